"""One test per static error: code, message, exact span, hint and the rendered report.

Every test compiles a small policy, takes the single diagnostic it must produce and
checks it field by field; `assert_rendered` then checks that `CompileError.render()`
shows `file:line:col`, the offending source line and a caret exactly under the span.
The last tests keep spec/errors.md honest: every code is documented there, and each
documented example still produces exactly the output shown.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policyengine import CompileError, compile_sources, load_bundle
from policyengine.language.diagnostics import (
    Code,
    Diagnostic,
    Severity,
    did_you_mean,
    render,
)
from policyengine.language.parser import _EXAMPLES, parse_expr, parse_module

ERRORS_MD = Path(__file__).resolve().parent.parent / "spec" / "errors.md"
RULE = "rule r {{ layer audit on model.deployed require {} }}"


def compile_error(*files: str, names: tuple[str, ...] = ()) -> CompileError:
    """Compile the given sources (named `main.policy`, or `names`) and return the error."""
    paths = names or (
        ("main.policy",) if len(files) == 1 else tuple(f"f{i}.policy" for i in range(len(files)))
    )
    with pytest.raises(CompileError) as info:
        compile_sources(dict(zip(paths, files, strict=True)))
    return info.value


def only(err: CompileError) -> Diagnostic:
    assert len(err.diagnostics) == 1, err.render()
    return err.diagnostics[0]


def assert_diag(
    d: Diagnostic,
    code: Code,
    message: str,
    at: tuple[int, int, int],
    hint: str | None = None,
    *,
    file: str = "main.policy",
) -> None:
    """`at` is (line, first column, column after the span) of a one-line span."""
    assert d.code is code, d
    assert d.message == message
    assert (d.span.file, d.span.line, d.span.column, d.span.end_column) == (file, *at), d.span
    assert d.span.end_line == d.span.line
    assert d.hint == hint
    assert d.severity is Severity.ERROR


def assert_rendered(err: CompileError, d: Diagnostic) -> None:
    """The report shows where, the source line, and `^` exactly under the span."""
    text = err.render()
    sp = d.span
    source = err.sources[sp.file].splitlines()[sp.line - 1]
    lines = text.splitlines()
    header = f"error[{d.code.value}]: {d.message}"
    assert header in lines, text
    at = lines.index(header)
    gutter = len(str(sp.line)) + 1
    assert lines[at + 1] == f"{' ' * (gutter - 1)}--> {sp.file}:{sp.line}:{sp.column}"
    assert lines[at + 3] == f"{sp.line:>{gutter - 1}} | {source.expandtabs(1)}"
    width = sp.end_column - sp.column if sp.end_line == sp.line else len(source) - sp.column + 1
    assert lines[at + 4] == f"{' ' * gutter}| {' ' * (sp.column - 1)}{'^' * max(1, width)}"
    if d.hint:
        assert f"{' ' * gutter}= help: {d.hint}" in lines[at + 5 :], text


def check(
    source: str,
    code: Code,
    message: str,
    at: tuple[int, int, int],
    hint: str | None = None,
) -> Diagnostic:
    err = compile_error(source)
    d = only(err)
    assert_diag(d, code, message, at, hint)
    assert_rendered(err, d)
    return d


# ---------------------------------------------------------------- syntax


def test_syntax_single_equals_sign() -> None:
    check(
        "package p\n" + RULE.format('event.id = "x"'),
        Code.SYNTAX,
        "unexpected `=`; expected a comparison",
        (2, 57, 58),
        "use `==` to compare values; `=` only appears in `const NAME = value`",
    )


def test_syntax_unexpected_end_of_file_names_the_unclosed_brace() -> None:
    source = "package p\nrule r {\n  layer audit\n  on model.deployed\n  require true\n"
    d = check(
        source,
        Code.UNEXPECTED_EOF,
        "unexpected end of file: the `{` on line 2 is never closed",
        (5, 15, 16),
        "add the missing `}`",
    )
    (note, where), *_ = d.notes
    assert note == "unclosed `{`" and (where.line, where.column) == (2, 8)
    assert "= note: unclosed `{` at main.policy:2:8" in compile_error(source).render()


def test_syntax_unexpected_end_of_file_inside_an_expression() -> None:
    check(
        "package p\nconst X = 1 +",
        Code.UNEXPECTED_EOF,
        "unexpected end of file; expected an expression",
        (2, 14, 15),
    )


def test_syntax_unexpected_character() -> None:
    check(
        "package p\n" + RULE.format("1 @ 2 == 3"),
        Code.UNEXPECTED_CHAR,
        "unexpected character `@`",
        (2, 50, 51),
    )


def test_syntax_symbolic_operator_gets_a_hint() -> None:
    check(
        "package p\n" + RULE.format("true || false"),
        Code.UNEXPECTED_CHAR,
        "unexpected character `|`",
        (2, 53, 54),
        "`&&`, `||` and `!` are written `and`, `or` and `not`",
    )


def test_syntax_unterminated_string() -> None:
    check(
        'package p\nrule r { layer audit on model.deployed require event.id == "x }\n',
        Code.UNEXPECTED_CHAR,
        "unterminated string",
        (2, 60, 61),
        'strings end on the line they start; add the closing `"`',
    )


def test_syntax_keyword_used_as_a_name() -> None:
    check(
        "package p\nconst count = 2\n" + RULE.format("len(event.id) == count"),
        Code.SYNTAX,
        "`count` is a keyword and cannot be used as a name here",
        (3, 65, 70),
        "rename it; `count(…)` is the built-in quantifier",
    )


def test_syntax_unknown_clause_suggests_the_keyword() -> None:
    check(
        "package p\nrule r { layer audit on model.deployed requires true }",
        Code.SYNTAX,
        "unknown rule clause `requires`",
        (2, 40, 48),
        "did you mean `require`?",
    )


def test_syntax_keywords_match_whole_words_only() -> None:
    # `requirex == 1` used to lex as `require x == 1`.
    check(
        "package p\nrule r { layer audit on model.deployed requirex == 1 }",
        Code.SYNTAX,
        "unknown rule clause `requirex`",
        (2, 40, 48),
        "did you mean `require`?",
    )


def test_syntax_expected_tokens_read_naturally() -> None:
    d = only(compile_error("package p\nrule r { layer audit on model.deployed message 1 }"))
    assert d.message == 'unexpected `1`; expected a string like `"text"`'
    d = only(compile_error("package p\n" + RULE.format("(1 + 2 == 3")))
    assert d.message == "unexpected `}`; expected `)`"
    d = only(compile_error("package p\n" + RULE.format("true }")))
    assert d.message == (
        "unexpected `}`; expected a declaration (`import`, `const`, `rule`, `monitor` or `test`) "
        "or the end of the file"
    )
    assert d.hint == "this `}` has no matching `{`"


def test_syntax_missing_package_line() -> None:
    check(
        RULE.format("true"),
        Code.SYNTAX,
        "unexpected `rule`; expected `package`",
        (1, 1, 5),
        "every file starts with `package NAME` (e.g. `package gxp.deployment`)",
    )


@pytest.mark.parametrize("label", list(_EXAMPLES))
def test_every_example_hint_is_given_wherever_the_mistake_sits(label: str) -> None:
    # The examples are matched by parser state, not by stack depth, so the same mistake
    # after other clauses or inside brackets gets the same hint.
    for example in _EXAMPLES[label]:
        for variant in (example, example.replace("rule r { ", 'rule r { layer a title "t" ')):
            with pytest.raises(CompileError) as info:
                parse_module(variant)
            assert info.value.diagnostics[0].hint == label, variant


def test_syntax_comparisons_do_not_chain() -> None:
    check(
        "package p\n" + RULE.format("1 < 2 < 3"),
        Code.SYNTAX,
        "unexpected `<`: comparisons do not chain",
        (2, 54, 55),
        "write `a < b and b < c`, or add parentheses to compare a comparison's result",
    )


def test_bad_literal() -> None:
    check(
        "package p\n" + RULE.format("now > 2026-02-30T00:00:00Z"),
        Code.BAD_LITERAL,
        "invalid literal: day is out of range for month",
        (2, 54, 74),
    )


def test_bad_literal_timestamp_without_offset() -> None:
    check(
        "package p\n" + RULE.format("now > 2026-02-01T00:00:00"),
        Code.BAD_LITERAL,
        "timestamp `2026-02-01T00:00:00` has no UTC offset",
        (2, 54, 73),
        "write `2026-02-01T00:00:00Z` for UTC, or add an offset such as `+01:00`",
    )


def test_bad_template() -> None:
    check(
        'package p\nrule r { layer audit on model.deployed require true message "{x" }',
        Code.BAD_TEMPLATE,
        "unclosed `{` in message",
        (2, 62, 63),
        "write `{expression}` for a value, `{{` or `}}` for a literal brace",
    )


def test_template_hole_errors_point_into_the_string() -> None:
    check(
        "package p\n"
        'rule r { layer audit on model.deployed require true message "a {subject.nme}" }',
        Code.UNKNOWN_ATTRIBUTE,
        "unknown attribute `nme` for the subject (model_version) of `model.deployed`",
        (2, 73, 76),
        "did you mean `name`?",
    )


# ---------------------------------------------------------------- names


def test_unknown_attribute_for_the_event_type() -> None:
    check(
        'package p\nrule r { layer audit on dataset.accessed require event.purpse == "x" }',
        Code.UNKNOWN_ATTRIBUTE,
        "unknown attribute `purpse` for event `dataset.accessed`",
        (2, 56, 62),
        "did you mean `purpose`?",
    )


def test_unknown_attribute_without_a_close_match_lists_the_known_ones() -> None:
    d = only(compile_error("package p\n" + RULE.format("event.target.zzz == 1")))
    assert d.message == "unknown attribute `zzz` for `Target`"
    assert d.hint == "known attributes: `endpoint`, `environment`, `region`"


def test_undefined_rule() -> None:
    check(
        "package p\n" + RULE.format("passed(base)") + "\n"
        "rule bse { layer audit on model.deployed require true }",
        Code.UNDEFINED_RULE,
        "undefined rule `base` in package `p`",
        (2, 55, 59),
        "did you mean `bse`?",
    )


def test_undefined_rule_without_a_close_match_lists_the_rules() -> None:
    d = only(compile_error("package p\n" + RULE.format("failed(zzz)")))
    assert d.message == "undefined rule `zzz` in package `p`"
    assert d.hint == "rules in package `p`: `r`"


def test_rule_reference_through_an_unknown_alias() -> None:
    check(
        "package p\n" + RULE.format("passed(base.signed)"),
        Code.UNDEFINED_NAME,
        "`base` is not an imported package",
        (2, 55, 59),
        "add `import <package>` (or `import <package> as base`), then write `base.signed`",
    )


def test_undefined_constant_of_a_package() -> None:
    err = compile_error(
        "package gxp.common\nconst QA_ROLES = 1",
        "package p\nimport gxp.common\n" + RULE.format("common.QA_ROLE == 1"),
        names=("common.policy", "main.policy"),
    )
    d = only(err)
    assert_diag(
        d,
        Code.UNDEFINED_NAME,
        "undefined constant `QA_ROLE` in package `gxp.common`",
        (3, 48, 62),
        "did you mean `QA_ROLES`?",
    )
    assert_rendered(err, d)


def test_undefined_name() -> None:
    check(
        "package p\nconst MAX_AGE = 1\n" + RULE.format("MAX_AGES == 1"),
        Code.UNDEFINED_NAME,
        "undefined name `MAX_AGES`",
        (3, 48, 56),
        "did you mean `MAX_AGE`?",
    )


def test_undefined_package() -> None:
    check(
        "package p\nimport gxp.common\n" + RULE.format("common.X == 1"),
        Code.UNDEFINED_PACKAGE,
        "undefined package `gxp.common`",
        (2, 8, 18),
        "is the file that declares it part of the bundle?",
    )  # and no follow-on errors for `common.X`


def test_unknown_function() -> None:
    check(
        "package p\n" + RULE.format('lenght("a") == 1'),
        Code.UNKNOWN_FUNCTION,
        "unknown function `lenght`",
        (2, 48, 54),
        "did you mean `len`?",
    )


def test_on_pattern_matching_no_event_type() -> None:
    check(
        "package p\nrule r { layer audit on model.deploy require true }",
        Code.UNKNOWN_EVENT_TYPE,
        "`on model.deploy` matches no event type",
        (2, 25, 37),
        "did you mean `model.deployed`?",
    )


def test_unknown_entity_kind_in_a_test() -> None:
    check(
        "package p\n" + RULE.format("true") + '\ntest "t" { given datset "d" {} }',
        Code.UNKNOWN_ENTITY_KIND,
        "unknown entity kind `datset`",
        (3, 18, 24),
        "did you mean `dataset`?",
    )


def test_shadowed_name() -> None:
    check(
        "package p\n" + RULE.format("any(subject in [1]: true)"),
        Code.SHADOWED_NAME,
        "variable `subject` hides the built-in `subject`",
        (2, 48, 73),
        "pick another variable name",
    )


# ---------------------------------------------------------------- types


def test_type_mismatch() -> None:
    check(
        "package p\n" + RULE.format('subject.created_at > "2026-01-01T00:00:00Z"'),
        Code.TYPE_MISMATCH,
        "cannot order `timestamp?` and `string` with `>`",
        (2, 48, 91),
        "write timestamps unquoted (`2026-01-31T00:00:00Z`) or convert with `time(text)`",
    )


def test_type_mismatch_string_plus_number_explains_there_is_no_conversion() -> None:
    d = only(compile_error("package p\n" + RULE.format('event.id + 1 == "x1"')))
    assert d.message == "cannot apply `+` to `string` and `int`"
    assert d.hint is not None and "nothing is converted implicitly" in d.hint


def test_type_mismatch_non_boolean_requirement() -> None:
    check(
        "package p\n" + RULE.format("len(event.id)"),
        Code.TYPE_MISMATCH,
        "a requirement must be a boolean, found `int`",
        (2, 48, 61),
        'compare the value, e.g. `x == "value"`, or test presence with `has(x)`',
    )


def test_wrong_arity() -> None:
    check(
        "package p\n" + RULE.format('contains("abc") == true'),
        Code.WRONG_ARITY,
        "`contains` takes 2 arguments, got 1",
        (2, 48, 63),
        "`contains(text, part)` or `contains(collection, item)`",
    )


def test_invalid_regex() -> None:
    check(
        "package p\n" + RULE.format('matches(event.id, "evt-(")'),
        Code.BAD_REGEX,
        "invalid regular expression `evt-(`: missing ): evt-(",
        (2, 66, 73),
        "patterns use RE2 syntax (no backreferences or look-around), so matching is linear",
    )


def test_not_constant() -> None:
    check(
        "package p\nconst START = now",
        Code.NOT_CONSTANT,
        "`now` cannot be used in a constant",
        (2, 15, 18),
        "constants are fixed when the bundle compiles; move this into a rule",
    )


# ---------------------------------------------------------------- structure


def test_duplicate_rule_id() -> None:
    d = check(
        "package p\n" + RULE.format("true") + "\n" + RULE.format("false"),
        Code.DUPLICATE_RULE,
        "rule `r` is defined twice in package `p`",
        (3, 6, 7),
        "rule ids must be unique within a package; rename one of them",
    )
    assert [(m, s.line, s.column) for m, s in d.notes] == [("first defined", 2, 6)]


def test_duplicate_const() -> None:
    check(
        "package p\nconst X = 1\nconst X = 2",
        Code.DUPLICATE_CONST,
        "constant `X` is defined twice in package `p`",
        (3, 7, 8),
        "rename one of them",
    )


def test_rule_dependency_cycle() -> None:
    d = check(
        "package p\n"
        "rule a { layer audit on model.deployed require passed(b) }\n"
        "rule b { layer audit on model.deployed require failed(a) }",
        Code.DEPENDENCY_CYCLE,
        "rule dependency cycle: `a` → `b` → `a`",
        (2, 6, 7),
        "a rule cannot depend on its own outcome; break the cycle by removing one of these "
        "references",
    )
    assert [(m, s.line) for m, s in d.notes] == [("part of the cycle", 3)]


def test_constant_dependency_cycle() -> None:
    check(
        "package p\nconst A = B + 1\nconst B = A * 2",
        Code.DEPENDENCY_CYCLE,
        "constant dependency cycle: `A` → `B` → `A`",
        (2, 7, 8),
        "a constant cannot depend on its own value; break the cycle by removing one of these "
        "references",
    )


def test_rule_without_a_requirement() -> None:
    check(
        "package p\nrule r { layer audit on model.deployed }",
        Code.MISSING_REQUIREMENT,
        "rule `r` has no requirement",
        (2, 6, 7),
        "add at least one `require <condition>`",
    )


def test_missing_layer() -> None:
    check(
        "package p\nrule r { on model.deployed require true }",
        Code.MISSING_CLAUSE,
        "rule `r` has no `layer`",
        (2, 6, 7),
        "add `layer <privacy | monitoring | audit | oversight>`",
    )


def test_missing_on() -> None:
    check(
        "package p\nrule r { layer audit require true }",
        Code.MISSING_CLAUSE,
        "rule `r` does not say which events trigger it",
        (2, 6, 7),
        "add `on <event type>`, e.g. `on model.deploy_requested` or `on model.*`",
    )


@pytest.mark.parametrize(
    ("clause", "message", "at", "hint"),
    [
        ("layer audt", "unknown layer `audt`", (2, 16, 20), "did you mean `audit`?"),
        (
            "layer audit severity urgent",
            "unknown severity `urgent`",
            (2, 31, 37),
            "expected one of `info`, `low`, `medium`, `high`, `critical`",
        ),
        (
            "layer audit enforce strict",
            "unknown enforcement level `strict`",
            (2, 30, 36),
            "expected one of `advisory`, `soft`, `hard`",
        ),
    ],
)
def test_bad_clause_value(clause: str, message: str, at: tuple[int, int, int], hint: str) -> None:
    check(
        f"package p\nrule r {{ {clause} on model.deployed require true }}",
        Code.BAD_CLAUSE_VALUE,
        message,
        at,
        hint,
    )


def test_soft_rule_without_override_by() -> None:
    check(
        "package p\nrule r { layer audit enforce soft on model.deployed require true }",
        Code.MISSING_CLAUSE,
        "soft rule `r` does not say who may override it",
        (2, 30, 34),
        'add `override by "qa"` (one or more roles)',
    )


def test_override_by_on_a_hard_rule() -> None:
    check(
        'package p\nrule r { layer audit override by "qa" on model.deployed require true }',
        Code.BAD_CLAUSE_VALUE,
        "`override by` only applies to soft rules; `r` is hard",
        (2, 6, 7),
        "use `enforce soft`, or drop `override by`",
    )


def test_repeated_clause() -> None:
    check(
        "package p\n"
        "rule r { layer audit on model.deployed severity low severity high require true }",
        Code.REPEATED_CLAUSE,
        "`severity` is given more than once in rule `r`",
        (2, 53, 66),
        "keep one; only `require` may repeat",
    )


def test_duplicate_test() -> None:
    check(
        "package p\n" + RULE.format("true") + '\ntest "t" { }\ntest "t" { }',
        Code.DUPLICATE_TEST,
        "test `t` is defined twice in package `p`",
        (4, 1, 13),
        "test names identify results in reports; rename one of them",
    )


# ---------------------------------------------------------------- files


def test_file_error(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        load_bundle(tmp_path / "nowhere")
    d = only(info.value)
    assert d.code is Code.FILE_ERROR
    assert d.message == f"no such file or directory `{tmp_path / 'nowhere'}`"
    assert f"--> {tmp_path / 'nowhere'}:1:1" in info.value.render()


def test_no_policies(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a policy")
    with pytest.raises(CompileError) as info:
        load_bundle(tmp_path)
    d = only(info.value)
    assert d.code is Code.NO_POLICIES
    assert d.message == f"no `*.policy` files found in `{tmp_path}`"
    assert d.hint == "policy files end in `.policy`"


# ---------------------------------------------------------------- reporting


def test_errors_from_two_files_are_all_reported_sorted_by_location() -> None:
    b = (
        "package q\n"
        + RULE.format("X == 1")
        + "\nrule s { layer audt on model.deployed require true }"
    )
    a = "package p\nimport q\n" + RULE.format("q.Y == 1 and lenn(event.id) == 1")
    err = compile_error(b, a, names=("b.policy", "a.policy"))
    got = [(d.span.file, d.span.line, d.span.column, d.code) for d in err.diagnostics]
    assert got == [
        ("a.policy", 3, 48, Code.UNDEFINED_NAME),
        ("a.policy", 3, 61, Code.UNKNOWN_FUNCTION),
        ("b.policy", 2, 48, Code.UNDEFINED_NAME),
        ("b.policy", 3, 16, Code.BAD_CLAUSE_VALUE),
    ]
    text = err.render()
    positions = [text.index(f"--> {f}:{line}:{col}") for f, line, col, _ in got]
    assert positions == sorted(positions)
    assert text.endswith("\n\n4 errors")
    for d in err.diagnostics:
        assert_rendered(err, d)


def test_a_syntax_error_in_one_file_does_not_hide_errors_in_another() -> None:
    err = compile_error("package p\nrule r {", "package q\n" + RULE.format("Z"))
    assert [d.code for d in err.diagnostics] == [Code.UNEXPECTED_EOF, Code.UNDEFINED_NAME]


def test_render_of_a_span_over_several_lines_underlines_to_the_end_of_the_line() -> None:
    d = Diagnostic(
        Code.TYPE_MISMATCH,
        "m",
        parse_module("package p\nconst X = [1,\n 2]").consts[0].value.span,
    )
    text = render(d, "package p\nconst X = [1,\n 2]")
    assert text.splitlines()[4] == "  |           ^^^"


def test_render_without_source_shows_only_the_location() -> None:
    d = Diagnostic(Code.SYNTAX, "m", parse_expr("a", "x.policy").span, hint="h")
    assert render(d, None) == "error[E0101]: m\n --> x.policy:1:1\n  = help: h"


def test_to_dict_is_json_ready() -> None:
    d = only(compile_error("package p\n" + RULE.format("X == 1")))
    assert d.to_dict() == {
        "code": "E0201",
        "severity": "error",
        "message": "undefined name `X`",
        "file": "main.policy",
        "line": 2,
        "column": 48,
        "end_line": 2,
        "end_column": 49,
        "hint": "names are `event`, `subject`, `now`, constants and quantifier variables",
        "notes": [],
    }


def test_did_you_mean() -> None:
    assert did_you_mean("enviroment", ["environment", "endpoint"]) == "did you mean `environment`?"
    assert did_you_mean("zzz", ["environment"]) is None


def test_codes_are_unique_and_stable() -> None:
    values = [c.value for c in Code]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"E0[1-5]\d\d", v) for v in values)
    assert Code.SYNTAX.value == "E0101" and Code.NO_POLICIES.value == "E0502"


# ---------------------------------------------------------------- spec/errors.md


def _sections() -> dict[str, str]:
    text = ERRORS_MD.read_text("utf-8")
    parts = re.split(r"^## (E\d{4}) ", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_code_is_documented() -> None:
    sections = _sections()
    for code in Code:
        assert code.value in sections, f"{code.value} ({code.name}) is missing from spec/errors.md"
        assert f"`{code.name}`" in sections[code.value].splitlines()[0]
    assert set(sections) == {c.value for c in Code}


def test_documented_examples_produce_the_documented_output() -> None:
    """Each ```policy example compiles (as `example.policy`) to the ```text output shown,
    so the reference cannot drift from the compiler. Regenerate the block on purpose when
    a message improves."""
    checked = 0
    for code, body in _sections().items():
        m = re.search(r"```policy\n(.*?)```\n+```text\n(.*?)```", body, flags=re.S)
        if m is None:
            continue
        source, shown = m.group(1), m.group(2)
        with pytest.raises(CompileError) as info:
            compile_sources({"example.policy": source})
        assert code in {d.code.value for d in info.value.diagnostics}
        assert info.value.render() + "\n" == shown, f"spec/errors.md {code} is out of date"
        checked += 1
    # The file-level codes and the E0410 warning (which does not raise) have no example.
    assert checked >= len(Code) - 4


def test_dependency_not_triggered_is_a_warning() -> None:
    source = (
        "package p\n"
        "rule a { layer audit on model.deploy_requested require true }\n"
        "rule b { layer audit on model.deploy_requested, model.deployed require passed(a) }\n"
    )
    bundle = compile_sources({"example.policy": source})
    (warning,) = bundle.warnings
    assert warning.code is Code.DEPENDENCY_NOT_TRIGGERED
    assert warning.severity.value == "warning"
    assert (warning.span.line, warning.span.column) == (3, 79)
    assert "`model.deployed`" in warning.message
    same_events = source.replace(", model.deployed", "")
    assert compile_sources({"example.policy": same_events}).warnings == ()


def test_review_by_on_an_advisory_rule() -> None:
    check(
        'package p\nrule r { layer audit enforce advisory review by "qa" within 2d'
        " on model.deployed require true }",
        Code.BAD_CLAUSE_VALUE,
        "`review by` needs a rule that blocks; `r` is advisory",
        (2, 39, 63),
        "use `enforce hard` or `enforce soft`, or drop `review by`",
    )


def test_review_deadline_must_be_positive() -> None:
    check(
        'package p\nrule r { layer audit review by "qa" within 0h on model.deployed require true }',
        Code.BAD_CLAUSE_VALUE,
        "the review deadline of rule `r` must be positive",
        (2, 22, 46),
        "e.g. `within 48h`",
    )
