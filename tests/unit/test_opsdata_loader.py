"""Loading ops data: every problem reported at the key or value it is about."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from textwrap import dedent

import pytest

from bot.opsdata import OpsDataError, OpsDataSource, Problem, load_opsdata, read_yaml

FIXTURES = Path(__file__).parent.parent / "fixtures" / "opsdata"

GROUPS = """\
groups:
  - id: sz-nanshan-kjy
    name: 深圳南山科技园福利1群
    city: 深圳
    location: {lat: 22.5405, lon: 113.9345}
"""

CAMPAIGN = """\
id: lunch-deals
name: 午餐附近美食
kind: meal
schedule:
  at: "11:30"
template: meal.j2
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")


@pytest.fixture
def ops(tmp_path: Path) -> tuple[Path, Path]:
    campaigns, templates = tmp_path / "campaigns", tmp_path / "templates"
    write(templates, {"meal.j2": "{{ group.name }}\n", "welcome.j2": "hi\n"})
    campaigns.mkdir()
    return campaigns, templates


def problems(campaigns: Path, templates: Path) -> list[Problem]:
    with pytest.raises(OpsDataError) as info:
        load_opsdata(campaigns, templates)
    return info.value.problems


def test_the_fixture_set_loads_with_dates_times_and_templates() -> None:
    data = load_opsdata(FIXTURES / "campaigns", FIXTURES / "templates")
    lunch = data.campaigns["lunch-deals"]
    assert lunch.schedule.at == [time(11, 30)]  # unquoted 11:30 is text in YAML 1.2
    assert lunch.valid.from_ == date(2026, 12, 1)
    assert set(data.campaigns) == {"lunch-deals", "welcome"}
    assert data.groups["sz-nanshan-kjy"].manager == "cm-li"
    assert set(data.templates) == {"meal.j2", "welcome.j2"}


def test_yaml_syntax_error_points_at_the_line_and_column(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"groups.yaml": "groups:\n  - id: a\n    name: [unclosed\n"})
    (p,) = problems(campaigns, templates)
    assert (p.path, p.line) == (campaigns / "groups.yaml", 4)
    assert "YAML syntax error" in p.message and "line 3" in p.message


def test_unknown_key_gives_its_exact_position_and_a_suggestion(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN.replace("schedule:", "shedule:")})
    found = problems(campaigns, templates)
    assert str(found[0]) == (
        f"{campaigns / 'lunch.yaml'}:4:1: unknown key 'shedule' (did you mean 'schedule'?)"
    )


def test_unknown_key_in_a_nested_list_item(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"groups.yaml": GROUPS + "    tgas: [office]\n"})
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col) == (6, 5)
    assert p.message == "unknown key 'tgas' (did you mean 'tags'?)"


def test_impossible_time_points_at_the_value(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN.replace('"11:30"', '"25:61"')})
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col) == (5, 7)
    assert p.message == "impossible time '25:61': hours go 00-23 and minutes 00-59"


def test_missing_key_points_at_the_enclosing_mapping(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "more.yaml": """\
        campaigns:
          - id: a
            name: A
            kind: welcome
            template: welcome.j2
          - id: b
            kind: welcome
            template: welcome.j2
        """
        },
    )
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col, p.message) == (6, 5, "missing key 'name'")


def test_wrong_choice_lists_the_choices_and_suggests_one(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN.replace("kind: meal", "kind: mael")})
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col) == (3, 7)
    assert "expected one of welcome, daily" in p.message and "did you mean 'meal'?" in p.message


def test_every_problem_is_reported_not_just_the_first(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "a.yaml": CAMPAIGN.replace('"11:30"', '"25:61"'),
            "b.yaml": GROUPS.replace("lat: 22.5405", "lat: 222"),
            "c.yaml": "groups: [\n",
        },
    )
    assert [p.path.name for p in problems(campaigns, templates)] == ["a.yaml", "b.yaml", "c.yaml"]


def test_unknown_template_suggests_the_closest_name(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN.replace("meal.j2", "mael.j2")})
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col) == (6, 11)
    assert p.message == "template 'mael.j2' not found in templates/ (did you mean 'meal.j2'?)"


def test_duplicate_ids_across_files_name_the_first_one(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "a/lunch.yaml": CAMPAIGN,
            "b/lunch-copy.yaml": CAMPAIGN,
            "groups.yaml": GROUPS,
            "more-groups.yml": GROUPS,
        },
    )
    found = {p.path.name: p for p in problems(campaigns, templates)}
    assert set(found) == {"lunch-copy.yaml", "more-groups.yml"}
    assert str(found["lunch-copy.yaml"]).endswith(
        "b/lunch-copy.yaml:1:5: duplicate campaign id 'lunch-deals' "
        "(already defined at campaigns/a/lunch.yaml:1)"
    )
    assert found["more-groups.yml"].message == (
        "duplicate group id 'sz-nanshan-kjy' (already defined at campaigns/groups.yaml:2)"
    )


def test_unknown_target_group_and_manager(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "groups.yaml": GROUPS + "    manager: cm-lee\n",
            "managers.yaml": "managers:\n  - {id: cm-li, name: 李, contact: x}\n",
            "lunch.yaml": CAMPAIGN + "targets: {groups: [sz-nanshan-kjy, sz-nanshan-kyj]}\n",
        },
    )
    msgs = sorted((p.path.name, p.line, p.col, p.message) for p in problems(campaigns, templates))
    assert msgs == [
        ("groups.yaml", 6, 14, "unknown manager 'cm-lee' (did you mean 'cm-li'?)"),
        ("lunch.yaml", 7, 36, "unknown group 'sz-nanshan-kyj' (did you mean 'sz-nanshan-kjy'?)"),
    ]


def test_a_second_referral_file_is_a_problem(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    referral = "referral:\n  tiers: [{count: 1, reward: 10元}]\n"
    write(campaigns, {"r1.yaml": referral, "r2.yaml": referral})
    (p,) = problems(campaigns, templates)
    assert (p.path.name, p.line, p.col) == ("r2.yaml", 1, 1)
    assert "campaigns/r1.yaml:1" in p.message


def test_unrecognised_file_names_the_accepted_keys_and_empty_file_is_ignored(
    ops: tuple[Path, Path],
) -> None:
    campaigns, templates = ops
    write(campaigns, {"odd.yaml": "campains: []\n", "empty.yaml": "# nothing yet\n"})
    (p,) = problems(campaigns, templates)
    assert (p.path.name, p.line, p.col) == ("odd.yaml", 1, 1)
    assert "`groups:`" in p.message and "did you mean 'campaigns'?" in p.message


def test_duplicate_yaml_key_is_a_problem(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN + "kind: daily\n"})
    (p,) = problems(campaigns, templates)
    assert p.line == 7 and "duplicate key" in p.message


def test_yaml_keeps_plain_types_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 11:30\nb: on\nc: 2026-12-01\nd: [1, 2.5, null]\n", encoding="utf-8")
    doc = read_yaml(path)
    assert doc.data == {"a": "11:30", "b": "on", "c": date(2026, 12, 1), "d": [1, 2.5, None]}
    assert type(doc.data["d"][1]) is float
    assert doc.value_pos(("d", 1)) == (4, 8)
    assert doc.key_pos(("c",)) == (3, 1)


def test_reload_keeps_the_last_good_data(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN})
    source = OpsDataSource(campaigns, templates)
    good, errors = source.reload()
    assert good is not None and errors == [] and source.current is good

    write(campaigns, {"lunch.yaml": CAMPAIGN.replace("schedule:", "shedule:")})
    broken, errors = source.reload()
    assert broken is None and "shedule" in errors[0].message
    assert source.current is good

    write(campaigns, {"lunch.yaml": CAMPAIGN.replace("午餐附近美食", "午餐")})
    fixed, errors = source.reload()
    assert errors == [] and fixed is source.current
    assert fixed.campaigns["lunch-deals"].name == "午餐"


def test_reload_runs_the_extra_check(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN})
    complaint = Problem(templates / "meal.j2", 1, 1, "nope")
    source = OpsDataSource(campaigns, templates, check=lambda data: [complaint])
    assert source.reload() == (None, [complaint])
    assert source.current is None
