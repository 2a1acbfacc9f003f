"""Rendering: real token counts, budget never exceeded, focus selection and subgraph."""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core.render import count_tokens, render_graph
from memory_node.core.types import Relation, SceneObject, Zone


def o(oid, label, x, zone="", present=True, last_seen=10.0, state=""):
    return SceneObject(
        id=oid,
        label=label,
        center=np.array([x, 0.5, 0.4]),
        size=np.full(3, 0.2),
        zone_id=zone,
        present=present,
        last_seen=last_seen,
        state=state,
    )


def graph():
    objects = [
        o("obj_000001", "table", 0.0, "zone_001", last_seen=9.0),
        o("obj_000002", "mug", 0.1, "zone_001", last_seen=8.0, state="full"),
        o("obj_000003", "chair", 0.9, "zone_001", last_seen=7.0),
        o("obj_000004", "bed", 10.0, "zone_002", last_seen=10.0),
        o("obj_000005", "lamp", 11.0, "zone_002", last_seen=6.0),
        o("obj_000006", "", 20.0, "", present=False, last_seen=1.0),
    ]
    relations = [
        Relation("obj_000002", "on", "obj_000001", 0.9),
        Relation("obj_000001", "near", "obj_000003", 0.5),
        Relation("obj_000004", "near", "obj_000005", 0.4),
    ]
    zones = [
        Zone(
            "zone_001",
            "kitchen",
            np.array([0.5, 0.5, 0.4]),
            np.ones(3),
            ["obj_000001", "obj_000002", "obj_000003"],
        ),
        Zone(
            "zone_002",
            "bedroom",
            np.array([10.5, 0.5, 0.4]),
            np.ones(3),
            ["obj_000004", "obj_000005"],
        ),
    ]
    return objects, relations, zones


def test_count_tokens_is_a_real_tokenizer() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("obj_000002") > 1  # WordPiece splits ids
    lines = ["- obj_000002 mug at (0.10, 0.50, 0.40), seen 2.0 s ago", "zone_001 kitchen:"]
    assert count_tokens("\n".join(lines)) == sum(count_tokens(line) for line in lines)


def test_unlimited_render_lists_everything() -> None:
    objects, relations, zones = graph()
    sel, rels, zs, text, tokens = render_graph(objects, relations, zones, "", 0, 0, None)
    assert len(sel) == 6 and tokens == count_tokens(text)
    assert sel[0].id == "obj_000004"  # no focus: present, most recent first
    assert sel[-1].id == "obj_000006"  # absent last
    assert (
        "obj_000002 mug at (0.10, 0.50, 0.40), full, seen 2.0 s ago; on obj_000001 table" in text
    )
    assert "absent, last seen 9.0 s ago" in text
    assert "zone_001 kitchen:" in text and "no zone:" in text
    assert len(rels) == 3 and {z.id for z in zs} == {"zone_001", "zone_002"}


@pytest.mark.parametrize("budget", [1, 5, 20, 30, 45, 60, 80, 120, 200, 400])
def test_budget_is_never_exceeded(budget: int) -> None:
    objects, relations, zones = graph()
    sel, _, _, text, tokens = render_graph(objects, relations, zones, "mug", 0, budget, None)
    assert tokens == count_tokens(text)
    assert tokens <= budget
    assert all(obj.id in text for obj in sel)


def test_budget_keeps_most_relevant_first() -> None:
    objects, relations, zones = graph()
    full = render_graph(objects, relations, zones, "mug", 0, 0, None)
    assert [o.id for o in full[0][:2]] == ["obj_000002", "obj_000001"]  # mug, then its support
    budget = count_tokens(full[3]) - 10
    sel, rels, zs, text, tokens = render_graph(objects, relations, zones, "mug", 0, budget, None)
    assert tokens <= budget and 0 < len(sel) < 6
    assert sel[0].id == "obj_000002" and "mug" in text
    ids = {x.id for x in sel}
    assert all(r.subject_id in ids and r.object_id in ids for r in rels)
    assert all(set(z.object_ids) <= ids for z in zs)


def test_tiny_budget_gives_empty_text() -> None:
    objects, relations, zones = graph()
    assert render_graph(objects, relations, zones, "", 0, 3, None) == ([], [], [], "", 0)


def test_max_objects_and_zone_focus() -> None:
    objects, relations, zones = graph()
    sel, _, zs, text, _ = render_graph(objects, relations, zones, "the bedroom", 2, 0, None)
    assert [x.id for x in sel] == ["obj_000004", "obj_000005"]
    assert [z.id for z in zs] == ["zone_002"] and "kitchen" not in text


def test_mapping_input_and_bad_arguments() -> None:
    objects, relations, zones = graph()
    as_map = {x.id: x for x in objects}
    assert (
        render_graph(as_map, relations, zones, "", 0, 0, None)[3]
        == (render_graph(objects, relations, zones, "", 0, 0, None)[3])
    )
    with pytest.raises(ValueError):
        render_graph(objects, relations, zones, "", -1, 0, None)


@pytest.mark.parametrize("budget", [100, 1000, 3000])
def test_budget_across_count_chunks(budget: int) -> None:
    objects = [o(f"obj_{i:06d}", ["mug", "plate", "chair"][i % 3], 0.1 * i) for i in range(200)]
    sel, _, _, text, tokens = render_graph(objects, [], [], "plate", 0, budget, None)
    assert tokens == count_tokens(text) <= budget
    assert sel and sel[0].label == "plate"
    unlimited = render_graph(objects, [], [], "plate", 0, 0, None)
    # the budget is filled: one more line of the unlimited rendering would not fit
    if len(sel) < 200:
        nxt = unlimited[0][len(sel)]
        extra = next(line for line in unlimited[3].splitlines() if nxt.id in line)
        assert tokens + count_tokens(extra) > budget


def test_focus_lists_every_named_object_before_neighbours() -> None:
    """'bring the mug to the bed': mug and bed come before the mug's table and the bed's lamp."""
    objects, relations, zones = graph()
    selected, *_ = render_graph(objects, relations, zones, "bring the mug to the bed", 0, 0, None)
    ids = [s.id for s in selected]
    assert set(ids[:2]) == {"obj_000002", "obj_000004"}
    assert set(ids[2:4]) == {"obj_000001", "obj_000005"}  # their neighbours next


def test_focus_on_changes_puts_the_changed_objects_of_the_named_zone_first() -> None:
    from memory_node.core.types import ChangeEvent, ChangeKind

    objects, relations, zones = graph()
    moved_in = ChangeEvent(  # the lamp came from the kitchen
        ChangeKind.MOVED,
        "obj_000005",
        "lamp",
        5.0,
        old_position=np.array([0.3, 0.5, 0.4]),
        new_position=np.array([11.0, 0.5, 0.4]),
    )
    elsewhere = ChangeEvent(
        ChangeKind.APPEARED, "obj_000004", "bed", 6.0, new_position=np.array([10.0, 0.5, 0.4])
    )
    changes = [elsewhere, moved_in]
    selected, *_ = render_graph(
        objects, relations, zones, "what changed in the kitchen?", 1, 0, None, changes=changes
    )
    assert [s.id for s in selected] == ["obj_000005"]
    # without the change log the same focus starts with the kitchen's own objects
    selected, *_ = render_graph(
        objects, relations, zones, "what changed in the kitchen?", 1, 0, None
    )
    assert selected[0].zone_id == "zone_001"
