"""Loading ops data: every problem reported at the key or value it is about."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from textwrap import dedent

import pytest

from bot.opsdata import OpsDataError, OpsDataSource, Problem, load_opsdata, read_yaml
from bot.opsdata.loader import read_opsdata
from bot.opsdata.models import FILE_KINDS
from bot.opsdata.yaml_aliases import ALIAS_EXPANSION_LIMIT

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
    # At the `[` that is never closed, not at the end of the file where the parser gave up.
    assert (p.path, p.line, p.col) == (campaigns / "groups.yaml", 3, 11)
    assert "not closed" in p.message and "']'" in p.message


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


def test_duplicate_ids_across_files_are_reported_at_both_places(ops: tuple[Path, Path]) -> None:
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
    assert set(found) == {"lunch.yaml", "lunch-copy.yaml", "groups.yaml", "more-groups.yml"}
    assert str(found["lunch.yaml"]).endswith(
        "a/lunch.yaml:1:5: duplicate campaign id 'lunch-deals' "
        "(also defined at campaigns/b/lunch-copy.yaml:1)"
    )
    assert str(found["lunch-copy.yaml"]).endswith(
        "b/lunch-copy.yaml:1:5: duplicate campaign id 'lunch-deals' "
        "(already defined at campaigns/a/lunch.yaml:1)"
    )
    assert (found["groups.yaml"].line, found["groups.yaml"].message) == (
        2,
        "duplicate group id 'sz-nanshan-kjy' (also defined at campaigns/more-groups.yml:2)",
    )
    assert (found["more-groups.yml"].line, found["more-groups.yml"].message) == (
        2,
        "duplicate group id 'sz-nanshan-kjy' (already defined at campaigns/groups.yaml:2)",
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
    assert (p.line, p.col) == (7, 1)
    assert p.message == (
        "the key 'kind' appears twice in this mapping (first on line 3); keep only one of them"
    )


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


DIRECTORY = """\
groups:
  - id: sz-nanshan-kjy
    name: 深圳南山科技园福利1群
    city: 深圳
    location: {lat: 22.5405, lon: 113.9345}
    manager: cm-li
managers:
  - {id: cm-li, name: 李经理, contact: wx-cm-li}
merchants:
  - id: qingfeng
    name: 庆丰包子铺
    category: 早餐
    location: {lat: 22.5430, lon: 113.9339}
    offer: 满20减8
"""


def test_a_directory_file_holds_groups_managers_and_merchants(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"directory.yaml": DIRECTORY, "lunch.yaml": CAMPAIGN})
    data = load_opsdata(campaigns, templates)
    assert set(data.groups) == {"sz-nanshan-kjy"}
    assert set(data.managers) == {"cm-li"}
    assert set(data.merchants) == {"qingfeng"}


def test_an_unknown_section_beside_known_ones_gets_a_suggestion(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"directory.yaml": DIRECTORY.replace("managers:", "manegers:")})
    found = [(p.line, p.col, p.message) for p in problems(campaigns, templates)]
    assert (7, 1, "unknown key 'manegers' (did you mean 'managers'?)") in found
    # The groups and merchants of the file are still read: only the manager is unknown.
    assert (6, 14, "unknown manager 'cm-li'") in found


def test_an_id_written_twice_in_one_file_is_reported_at_both_places(
    ops: tuple[Path, Path],
) -> None:
    campaigns, templates = ops
    twice = DIRECTORY + "  - {id: qingfeng, name: 又一家, category: 午餐, offer: x,\n"
    twice += "     location: {lat: 22.54, lon: 113.93}}\n"
    write(campaigns, {"directory.yaml": twice})
    found = [(p.line, p.col, p.message) for p in problems(campaigns, templates)]
    assert found == [
        (10, 9, "duplicate merchant id 'qingfeng' (also defined at campaigns/directory.yaml:15)"),
        (
            15,
            10,
            "duplicate merchant id 'qingfeng' (already defined at campaigns/directory.yaml:10)",
        ),
    ]


def test_a_broken_campaign_in_a_list_hides_nothing_of_the_next(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "more.yaml": """\
        campaigns:
          - id: a
            name: A
            kind: wekly
            schedule: {at: "09:00", days: [mon]}
            template: welcome.j2
          - id: b
            name: B
            kind: welcome
            template: welcom.j2
          - id: c
            name: C
            kind: welcome
            template: welcome.j2
        """
        },
    )
    loaded = read_opsdata(campaigns, templates)
    assert [(p.line, p.col) for p in loaded.problems] == [(4, 11), (10, 15)]
    assert "did you mean 'welcome.j2'" in loaded.problems[1].message
    # The lenient result keeps what is valid, with where each campaign was written.
    assert set(loaded.ops.campaigns) == {"c"}
    assert loaded.ops.campaign_sources["c"].loc == ("campaigns", 2)
    assert loaded.written_ids["campaigns"] == {"a", "b", "c"}


def test_normal_anchors_and_merges_keep_working(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(
        campaigns,
        {
            "groups.yaml": """\
        defaults: &defaults
          city: 深圳
          capacity: 300
        groups:
          - <<: *defaults
            id: a
            name: A
            location: {lat: 22.5, lon: 113.9}
          - <<: *defaults
            id: b
            name: B
            location: {lat: 22.6, lon: 113.9}
            capacity: 400
        """
        },
    )
    found = problems(campaigns, templates)
    # `defaults:` is not a section; the groups that use it still load.
    assert [(p.line, p.message) for p in found] == [
        (1, "unknown key 'defaults'; expected one of: " + ", ".join(FILE_KINDS))
    ]
    loaded = read_opsdata(campaigns, templates)
    assert {g.id: (g.city, g.capacity) for g in loaded.ops.groups.values()} == {
        "a": ("深圳", 300),
        "b": ("深圳", 400),
    }


LAUGHS = Path(__file__).parent.parent / "fixtures" / "billion-laughs"


def test_a_campaign_whose_aliases_expand_to_millions_is_one_error_at_the_alias(
    ops: tuple[Path, Path],
) -> None:
    campaigns, templates = ops
    text = (LAUGHS / "campaign.yaml").read_text("utf-8")
    assert len(text.encode()) < 600  # ten million values once expanded
    write(campaigns, {"lol.yaml": text, "lunch.yaml": CAMPAIGN})
    (p,) = problems(campaigns, templates)
    assert (p.path.name, p.line, p.col) == ("lol.yaml", 12, 38)
    assert p.message.startswith(f"aliases expand past {ALIAS_EXPANSION_LIMIT:,} values")


def test_an_alias_inside_its_own_anchor_is_an_error(ops: tuple[Path, Path]) -> None:
    campaigns, templates = ops
    write(campaigns, {"lunch.yaml": CAMPAIGN + "data: &d {again: *d}\n"})
    (p,) = problems(campaigns, templates)
    assert (p.line, p.col) == (7, 18)
    assert "alias *d is inside the part its anchor &d marks" in p.message


def test_a_broken_item_s_other_mistakes_are_reported_in_the_same_run(
    ops: tuple[Path, Path],
) -> None:
    # A schema error in an item used to hide its unknown template, group and manager, and a
    # duplicate of its id: each surfaced only in the run after the schema error was fixed.
    campaigns, templates = ops
    write(
        campaigns,
        {
            "directory.yaml": """\
        groups:
          - id: sz-nanshan-kjy
            name: 深圳南山科技园福利1群
            city: 深圳
            location: {lat: 22.5405, lon: 113.9345}
            capacity: lots
            manager: cm-lee
          - id: sz-nanshan-kjy
            name: 又一个
            city: 深圳
            location: {lat: 22.5405, lon: 113.9345}
        managers:
          - {id: cm-li, name: 李经理, contact: wxid_cm_li}
        """,
            "lunch.yaml": """\
        id: lunch-deals
        name: 午餐附近美食
        kind: mael
        targets: {groups: [sz-nanshan-kj]}
        schedule:
          at: "11:30"
        template: meals.j2
        """,
        },
    )
    found = [(p.path.name, p.line, p.col, p.message) for p in problems(campaigns, templates)]
    assert found == [
        (
            "directory.yaml",
            2,
            9,
            "duplicate group id 'sz-nanshan-kjy' (also defined at campaigns/directory.yaml:8)",
        ),
        ("directory.yaml", 6, 15, "expected a whole number, got 'lots'"),
        ("directory.yaml", 7, 14, "unknown manager 'cm-lee' (did you mean 'cm-li'?)"),
        (
            "directory.yaml",
            8,
            9,
            "duplicate group id 'sz-nanshan-kjy' (already defined at campaigns/directory.yaml:2)",
        ),
        ("lunch.yaml", 3, 7, found[4][3]),
        ("lunch.yaml", 4, 20, "unknown group 'sz-nanshan-kj' (did you mean 'sz-nanshan-kjy'?)"),
        (
            "lunch.yaml",
            7,
            11,
            "template 'meals.j2' not found in templates/ (did you mean 'meal.j2'?)",
        ),
    ]
    assert "got 'mael' (did you mean 'meal'?)" in found[4][3]
    # The valid copy is the one kept.
    assert read_opsdata(campaigns, templates).ops.groups["sz-nanshan-kjy"].name == "又一个"
