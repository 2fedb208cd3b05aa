"""Rendering templates that admins write: a sandboxed Jinja environment, unknown variables refused, and a
work limit, so that no template (by mistake or on purpose) can loop, recurse or grow without end.

The limits, per rendering: at most MAX_STEPS loop iterations and calls together, MAX_SECONDS of time,
`range()` of at most MAX_RANGE items, and no text or list longer than MAX_OUTPUT_CHARS (a rendering is
stored in a TEXT column) made by `~`, `+`, `*`, a filter or a method; numbers stay below MAX_INT_BITS.
Any error while rendering is the template's problem, told beside the field, never a 500.
"""
from __future__ import annotations

import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from app.db_types import TEXT_MAX_CHARS

MAX_STEPS = 20_000
MAX_SECONDS = 2.0
MAX_RANGE = 1_000
MAX_OUTPUT_CHARS = TEXT_MAX_CHARS
MAX_ARGUMENT = 1_000  # a width, count or padding given to a filter or method
MAX_INT_BITS = 4_096
_WIDE_FORMAT = re.compile(r"%[-#0 +]*\d{4,}|%[-#0 +]*\d*\.\d{4,}|\{[^{}]*:[^{}]*\d{4,}[^{}]*\}")


class TooMuchWork(SecurityError):
    pass


class _Budget:
    def __init__(self):
        self.steps = MAX_STEPS
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.steps -= 1
        if self.steps < 0 or (self.steps % 256 == 0 and time.monotonic() > self.deadline):
            raise TooMuchWork(f"This template does too much work (at most {MAX_STEPS:,} loop rounds and calls, "
                              f"{MAX_RANGE:,} items in a range).")


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _spend() -> None:
    budget = _budget.get()
    if budget is not None:  # always set by render()
        budget.spend()


def _size(value) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict, set)) else 0


def _too_long() -> TooMuchWork:
    return TooMuchWork(f"This template makes a text longer than {MAX_OUTPUT_CHARS:,} characters.")


def _checked(value):
    """A value made in the template: refused when longer than a rendering may be, or a number too large."""
    if _size(value) > MAX_OUTPUT_CHARS:
        raise _too_long()
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TooMuchWork("This template makes a number too large to show.")
    return value


def _check_arguments(value, args, kwargs) -> None:
    """Before a filter or a method of a text or list runs: no width or count that would make it huge."""
    for argument in (*args, *kwargs.values()):
        if isinstance(argument, int) and not isinstance(argument, bool) and abs(argument) > MAX_ARGUMENT:
            raise TooMuchWork(f"Use numbers up to {MAX_ARGUMENT:,} in filters and methods.")
        if isinstance(value, str) and isinstance(argument, str) and len(value) * len(argument) > 100 * MAX_OUTPUT_CHARS:
            raise _too_long()  # e.g. replace() of every letter of a long text by another long text
    if isinstance(value, str) and _WIDE_FORMAT.search(value):
        raise TooMuchWork(f"Use format widths up to {MAX_ARGUMENT:,}.")


def _guard_filter(function):
    first = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0  # after the context, if passed

    @wraps(function)  # keeps Jinja's pass_context / pass_eval_context mark
    def guarded(*args, **kwargs):
        _spend()
        _check_arguments(args[first] if len(args) > first else None, args[first + 1:], kwargs)
        return _checked(function(*args, **kwargs))

    return guarded


class _LimitedCodeGenerator(CodeGenerator):
    """Every for loop iterates through `environment.iterate` (one step a round); every `~` is size-checked."""

    def visit_For(self, node: nodes.For, frame) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("iterate", lineno=node.lineno), [node.iter], [], None,
                               None, lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedSandbox(SandboxedEnvironment):
    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options):
        super().__init__(**options)
        self.globals["range"] = self.range
        self.filters = {name: _guard_filter(function) for name, function in self.filters.items()}

    @staticmethod
    def range(*args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise TooMuchWork(f"range() is limited to {MAX_RANGE:,} items in a template.")
        return numbers

    @staticmethod
    def iterate(iterable):
        for item in iterable:
            _spend()
            yield item

    @staticmethod
    def checked(value):
        return _checked(value)

    def call_binop(self, context, operator: str, left, right):
        _spend()
        if operator == "*":
            count, sized = (right, left) if isinstance(right, int) else (left, right)
            if isinstance(count, int) and _size(sized) * max(count, 0) > MAX_OUTPUT_CHARS:
                raise _too_long()  # refused before it is built
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if right * max(abs(left), 1).bit_length() > MAX_INT_BITS:
                raise TooMuchWork("This template makes a number too large to show.")
        elif operator == "+" and _size(left) + _size(right) > MAX_OUTPUT_CHARS:
            raise _too_long()
        elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise TooMuchWork(f"Use format widths up to {MAX_ARGUMENT:,}.")
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _spend()
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)  # the sandbox wraps str.format
        if isinstance(owner, (str, list, tuple, dict)):  # "x".ljust(10 ** 9), "{:>999999999}".format(1)
            _check_arguments(owner, args, kwargs)
        return _checked(super().call(__context, __obj, *args, **kwargs))


_text_env = LimitedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_html_env = LimitedSandbox(undefined=StrictUndefined, autoescape=True)


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


def _generate(env: SandboxedEnvironment, source: str, context: dict) -> str:
    token = _budget.set(_Budget())
    try:
        parts, length = [], 0
        for part in _compile(env, source).generate(context):
            length += len(part)
            if length > MAX_OUTPUT_CHARS:
                raise TooMuchWork(f"This template renders to more than {MAX_OUTPUT_CHARS:,} characters.")
            parts.append(part)
        return "".join(parts)
    finally:
        _budget.reset(token)


def _render(env: SandboxedEnvironment, field: str, source: str | None, context: dict) -> str | None:
    if source is None or source == "":
        return None
    try:
        return _generate(env, source, context)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateProblem(field, f"{error.message or error}{where}") from None
    except RecursionError:
        raise TemplateProblem(field, "This template calls itself without end.") from None
    except Exception as error:  # noqa: BLE001 (1/0, "a" + 1, int("x")...: the admin's template, not our fault)
        raise TemplateProblem(field, f"This template fails with sample data: {error}") from None


def render(subject: str | None, body_text: str, body_html: str | None, context: dict) -> Rendered:
    rendered_subject = _render(_text_env, "subject", subject, context)
    return Rendered(
        subject=" ".join(rendered_subject.split()) if rendered_subject else None,
        body_text=_render(_text_env, "body_text", body_text, context) or "",
        body_html=_render(_html_env, "body_html", body_html, context),
    )
