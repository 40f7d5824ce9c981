"""The one Jinja environment: the catalogue's labels and the formatters in every template."""

from datetime import UTC, datetime

from shared.web.templating import environment


def test_templates_see_the_catalogue_and_the_formatters(tmp_path) -> None:
    (tmp_path / "t.html").write_text(
        "{{ EVENT_LABELS['StudentForgotten'] }}|{{ 2500|points }}|{{ moment|paris('date') }}|{{ 2|plural('vœu', 'vœux') }}"
        "|{{ '<b>' }}"
    )
    html = environment(tmp_path).get_template("t.html").render(moment=datetime(2027, 5, 1, tzinfo=UTC))
    assert html == "Effacement des données personnelles|2\u202f500|1er mai 2027|2 vœux|&lt;b&gt;"


def test_the_shared_templates_come_after_the_service_own(tmp_path) -> None:
    (tmp_path / "erreur.html").write_text("la mienne")
    env = environment(tmp_path)
    assert env.get_template("erreur.html").render() == "la mienne"
    assert env.get_template("_forms.html")  # found among the shared ones
