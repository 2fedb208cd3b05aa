"""Rendering templates that admins write: a sandboxed Jinja environment, unknown variables refused."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(ValueError):
    """A template that does not compile or render; `field` names the part at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body_text: str
    body_html: str | None


@lru_cache(maxsize=256)
def _compile(env: SandboxedEnvironment, source: str):
    return env.from_string(source)


def _render(env: SandboxedEnvironment, field: str, source: str | None, context: dict) -> str | None:
    if source is None or source == "":
        return None
    try:
        return _compile(env, source).render(context)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateProblem(field, f"{error.message or error}{where}") from None


def render(subject: str | None, body_text: str, body_html: str | None, context: dict) -> Rendered:
    rendered_subject = _render(_text_env, "subject", subject, context)
    return Rendered(
        subject=" ".join(rendered_subject.split()) if rendered_subject else None,
        body_text=_render(_text_env, "body_text", body_text, context) or "",
        body_html=_render(_html_env, "body_html", body_html, context),
    )
