"""Hypothesis inputs shared by the parser property tests: good trace lines
with up to three characters replaced or inserted anywhere."""

from __future__ import annotations

from hypothesis import strategies as st


def mutated_lines(tokens: list[str], max_codepoint: int) -> st.SearchStrategy[list[str]]:
    """1-8 lines, each one of ``tokens`` with up to three edits (a character
    from the field separators or any up to ``max_codepoint``, replacing or
    inserted at a position); newlines and CRs become spaces."""
    edits = st.lists(
        st.tuples(
            st.integers(0, 200),
            st.sampled_from(list(" []:.=x0-9aZ\t#(")) | st.characters(max_codepoint=max_codepoint),
        ),
        max_size=3,
    )
    return st.lists(st.tuples(st.sampled_from(tokens), edits), min_size=1, max_size=8).map(
        lambda lines: [_apply(base, ed) for base, ed in lines]
    )


def _apply(base: str, edits: list[tuple[int, str]]) -> str:
    t = base
    for pos, ch in edits:
        p = pos % (len(t) + 1)
        t = t[:p] + ch + t[p + 1 :] if pos % 2 else t[:p] + ch + t[p:]
    return t.replace("\n", " ").replace("\r", " ")
