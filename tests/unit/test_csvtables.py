"""Long tables as CSV: the same ops data as YAML, the same rules, problems at the cell."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.opsdata import OpsDataError, load_opsdata
from bot.opsdata.csvtables import _parse, csv_section, table_rows
from bot.opsdata.loader import read_opsdata

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("groups", "merchants", "managers")


def write_csv(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


@pytest.fixture
def shipped(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped campaigns and templates."""
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    return tmp_path / "campaigns", ROOT / "templates"


def test_a_csv_directory_loads_exactly_as_its_yaml(shipped: tuple[Path, Path]) -> None:
    campaigns, templates = shipped
    as_yaml = load_opsdata(campaigns, templates)
    for section in TABLES:
        source = campaigns / f"{section}.yaml"
        items = yaml.safe_load(source.read_text(encoding="utf-8"))[section]
        source.unlink()
        write_csv(campaigns / f"{section}.csv", table_rows(section, items))
    as_csv = load_opsdata(campaigns, templates)
    assert as_csv.groups == as_yaml.groups
    assert list(as_csv.groups) == list(as_yaml.groups)
    assert as_csv.merchants == as_yaml.merchants
    assert as_csv.managers == as_yaml.managers
    assert as_csv == as_yaml
    # Lists and locations really went through the cells, not only defaults.
    assert any(m.days for m in as_csv.merchants.values())
    assert all(g.location.lat for g in as_csv.groups.values())


def test_files_name_their_table() -> None:
    assert csv_section(Path("groups.csv")) == "groups"
    assert csv_section(Path("Groups-深圳.csv")) == "groups"
    assert csv_section(Path("merchants_2026.csv")) == "merchants"
    assert csv_section(Path("managers.sz.csv")) == "managers"
    assert csv_section(Path("groupsx.csv")) is None
    assert csv_section(Path("shops.csv")) is None


GOOD_HEADER = "id,name,city,district,lat,lon,crs,capacity,tags,manager\n"


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir(exist_ok=True)
    (campaigns / "managers.yaml").write_text(
        "managers:\n  - {id: cm-li, name: 李经理, contact: wxid_li}\n", encoding="utf-8"
    )
    for name, text in files.items():
        (campaigns / name).write_text(text, encoding="utf-8")
    loaded = read_opsdata(campaigns, ROOT / "templates")
    return [str(p.relative_to(tmp_path)) for p in loaded.errors]


def test_bad_cells_are_located_at_their_line_and_column(tmp_path: Path) -> None:
    text = (
        GOOD_HEADER
        + "g1,南山1群,深圳,南山区,22.54,113.93,gcj02,500,office|residential,cm-li\n"
        + '\n'  # blank lines are skipped, line numbers still count them
        + 'g2,"南山,2群",深圳,南山区,22.55,113.94,,abc,office,cm-li\n'
        + "g3,x,深圳,南山区,95,113.94,,,,cm-wang\n"
        + "g4,x,深圳,,22.5,113.9,wgs99,,,\n"
        + "g5,x,深圳,,22.5,113.9,,,,\n"
        + "g6,x,深圳\n"
    )
    assert problems_of(tmp_path, {"groups.csv": text}) == [
        # `abc` starts at column 33 of line 4 (the quoted cell holds a comma).
        "campaigns/groups.csv:4:33: expected a whole number, got 'abc'",
        "campaigns/groups.csv:5:13: expected a number at most 90.0, got '95'",
        # A broken row's references are still checked, in the same run.
        "campaigns/groups.csv:5:26: unknown manager 'cm-wang'",
        "campaigns/groups.csv:6:21: expected one of gcj02, wgs84, bd09, got 'wgs99' "
        "(did you mean 'wgs84'?)",
        "campaigns/groups.csv:8:8: expected 10 cells (one per header column), got 3: "
        "a comma too many or too few?",
    ]


def test_a_bad_list_item_is_located_inside_its_cell(tmp_path: Path) -> None:
    text = "id,name,category,lat,lon,offer,days\nm1,面馆,午餐,22.5,113.9,满30减10,mon| tue|funday\n"
    found = problems_of(tmp_path, {"merchants.csv": text})
    assert len(found) == 1
    assert found[0].startswith("campaigns/merchants.csv:2:37: expected one of mon, tue")


def test_header_problems_are_said_once_at_the_header(tmp_path: Path) -> None:
    rows = "".join(f"g{i},x,深圳,22.5,113.9,1\n" for i in range(500))
    found = problems_of(tmp_path, {"groups.csv": "id,nmae,city,lat,lon,lat\n" + rows})
    assert found == [
        "campaigns/groups.csv:1:1: missing column 'name' (did you mean 'nmae'?)",
        "campaigns/groups.csv:1:4: unknown column 'nmae' (did you mean 'name'?) "
        "(a column of groups CSV)",
        "campaigns/groups.csv:1:22: column 'lat' repeats 'lat'",
    ]


def test_rows_the_csv_module_refuses_are_located_and_explained(tmp_path: Path) -> None:
    bad_quote = 'id,name,city,lat,lon\ng1,"a"b,深圳,22.5,113.9\ng2,b,深圳,22.5,113.9\n'
    unclosed = (
        'id,name,city,lat,lon\ng1,b,深圳,22.5,113.9\ng2,"abc,深圳,22.5,113.9\ng3,c,深圳,1,1\n'
    )
    found = problems_of(tmp_path, {"groups-a.csv": bad_quote, "groups-b.csv": unclosed})
    assert found == [
        'campaigns/groups-a.csv:2:4: a quoted cell must end with `"` right before the comma '
        '(a `"` inside a quoted cell is written `""`)',
        'campaigns/groups-b.csv:3:4: a quoted cell is never closed: the `"` here opens it and '
        'no `"` ends it',
    ]


def test_unnamed_and_undecodable_files_are_reported(tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "groups.csv").write_bytes(b"id,name\n" + "深圳".encode("gbk") + b",x\n")
    found = problems_of(tmp_path, {"shops.csv": "id,name\nx,y\n"})
    assert found[0].startswith("campaigns/groups.csv:1:1: not UTF-8 text")
    assert "CSV UTF-8" in found[0]
    assert found[1].startswith("campaigns/shops.csv:1:1: cannot tell which table")


def test_an_id_in_a_csv_and_a_yaml_file_is_a_duplicate_at_both(tmp_path: Path) -> None:
    yaml_groups = (
        "groups:\n"
        "  - id: g1\n"
        "    name: 一群\n"
        "    city: 深圳\n"
        "    location: {lat: 22.5, lon: 113.9}\n"
    )
    text = "name,id,city,lat,lon\n二群,g2,深圳,22.5,113.9\n三群,g1,深圳,22.5,113.9\n"
    found = problems_of(tmp_path, {"groups.csv": text, "groups.yaml": yaml_groups})
    assert found == [
        "campaigns/groups.csv:3:4: duplicate group id 'g1' (also defined at "
        "campaigns/groups.yaml:2)",
        "campaigns/groups.yaml:2:9: duplicate group id 'g1' (already defined at "
        "campaigns/groups.csv:3)",
    ]


def test_a_valid_csv_is_strict_loaded_and_a_broken_one_rejected(tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "groups.csv").write_text(
        "id,name,city,lat,lon,tags\ng1,一群,深圳,22.5,113.9,office | residential\n",
        encoding="utf-8",
    )
    ops = load_opsdata(campaigns, ROOT / "templates")
    assert ops.groups["g1"].tags == ["office", "residential"]
    assert ops.groups["g1"].location.crs == "gcj02"
    (campaigns / "groups.csv").write_text("id,name,city,lat,lon\ng1,一群,深圳,x,1\n", "utf-8")
    with pytest.raises(OpsDataError):
        load_opsdata(campaigns, ROOT / "templates")


cell_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\x00"),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(cell_text, min_size=5, max_size=5), min_size=1, max_size=5), st.data())
def test_any_cell_is_located_where_it_starts(rows: list[list[str]], data: st.DataObject) -> None:
    """Whatever the cells hold (commas, quotes, line breaks), a problem with a cell points to
    where that cell starts in the raw text."""
    header = ["name", "id", "city", "lat", "lon"]
    text = ",".join(header) + "\n"
    offsets = []  # the raw offset where each cell of each row starts
    for row in rows:
        starts = []
        for j, cell in enumerate(row):
            text += "," if j else ""
            starts.append(len(text))
            piece = io.StringIO()
            csv.writer(piece, lineterminator="\n").writerow([cell])
            text += piece.getvalue()[:-1]
        text += "\n"
        offsets.append(starts)
    table = _parse(Path("groups.csv"), "groups", text)
    parsed = list(csv.reader(io.StringIO(text, newline="")))[1:]
    kept = [i for i, r in enumerate(parsed) if any(c.strip() for c in r)]
    if table.doc is None or not kept:
        return
    k = data.draw(st.integers(0, len(kept) - 1))
    j = data.draw(st.integers(0, 4))
    key = header[j] if header[j] not in ("lat", "lon") else ("location", header[j])
    loc = ("groups", k, *((key,) if isinstance(key, str) else key))
    line, col = table.doc.keys.get(loc) or table.doc.key_pos(loc)
    if not rows[kept[k]][j].strip():
        return  # an empty cell: the key is not given
    offset = offsets[kept[k]][j]
    assert text.count("\n", 0, offset) + 1 == line
    assert offset - (text.rfind("\n", 0, offset) + 1) + 1 == col
