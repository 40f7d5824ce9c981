"""The committed OpenAPI and AsyncAPI documents are in step with the code (CI runs this)."""

from services.cli.docs import API_DIR, documents, stale_documents


def test_the_committed_api_documents_match_the_code():
    assert stale_documents() == [], "run `passpro docs` and commit shared/contracts/api/"


def test_every_service_documents_its_refusals_in_french():
    docs = documents()
    for name in ("registration", "evaluation", "scoring"):
        text = docs[f"openapi-{name}.json"]
        for status in ("401", "403", "404", "409", "413", "422"):
            assert f'"{status}"' in text, (name, status)
        assert "Jeton d'authentification absent" in text


def test_the_asyncapi_document_describes_every_stream_and_the_entry_format():
    text = documents()["asyncapi.json"]
    for key in ("passpro:{paris}:rectorat", "passpro:{paris}:{campaign}:registration",
                "passpro:{paris}:{campaign}:evaluation", "passpro:{paris}:{campaign}:student:{ine}"):
        assert key in text
    for field in ("event_id", "schema_version", "student_version", "prev_hash", "recorded_at"):
        assert f'"{field}"' in text
    assert (API_DIR / "asyncapi.json").exists()
