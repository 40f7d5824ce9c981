"""The guided motivation letter's template (SPEC §6): versioned reference data, one French question each.

The template ships beside the establishments (`reference/letter-template.json`); a student's letter
(`MotivationLetterSaved`) answers its questions by id and names the template version it answered.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from pydantic import Field, model_validator

from shared.contracts.events import LETTER_ANSWER_MAX, MAX_LETTER_ANSWERS, Contract, QuestionId, Text


class Question(Contract):
    id: QuestionId
    prompt: Text(200)
    help: Text(400)
    max_length: int = Field(ge=1, le=LETTER_ANSWER_MAX)


class LetterTemplate(Contract):
    version: int = Field(ge=1, le=1000)
    title: Text(120)
    source: Text(600)
    questions: tuple[Question, ...] = Field(min_length=1, max_length=MAX_LETTER_ANSWERS)

    @model_validator(mode="after")
    def _unique_ids(self) -> LetterTemplate:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("a question id appears twice in the letter template")
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


@cache
def default_letter_template() -> LetterTemplate:
    """The template shipped with the code (read once, when first asked; never at import)."""
    text = files("shared.contracts").joinpath("reference/letter-template.json").read_text(encoding="utf-8")
    return LetterTemplate.model_validate_json(text)
