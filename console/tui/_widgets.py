"""Widgets that fit an 80×24 terminal: the footer and the tables of the console's screens.

:class:`FitFooter` is Textual's compact footer, fitted to its width (see :mod:`._fit`):
each screen (and the app) says in ``FOOTER`` which keys may be shortened or left out —
binding id → (short label, drop rank). A key left out is still bound, listed in the F1
key panel and in the command palette. :class:`FitTable` is a table of whole rows (the
devices, the audit trail) whose columns follow its width.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer
from textual.widgets._footer import FooterKey

from console.tui._fit import Col, Key, Planned, fit_keys, plan_columns

#: Binding id → (short label, drop rank), as screens declare it in ``FOOTER``.
FooterFits = Mapping[str, tuple[str, int]]


def cell(value: str) -> Text:
    """A table cell shown as written (never markup), ending in … when it is cut."""
    return Text(value, no_wrap=True, overflow="ellipsis")


class FitFooter(Footer):
    """The compact footer, fitted to its width (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._fitted_to = -1

    def _fits(self) -> FooterFits:
        fits: dict[str, tuple[str, int]] = dict(getattr(self.app, "FOOTER", {}))
        fits.update(getattr(self.screen, "FOOTER", {}))
        return fits

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        app = self.app
        active = self.screen.active_bindings
        fits = self._fits()
        entries: list[tuple[Binding, bool, str, Key]] = []
        actions: set[str] = set()
        for _, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            brief, drop = fits.get(binding.id or "", ("", 0))
            key = Key(binding.key, app.get_key_display(binding), binding.description, brief, drop)
            entries.append((binding, enabled, tooltip, key))
        palette = None
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            palette = active.get(app.COMMAND_PALETTE_BINDING)
        self._fitted_to = self.size.width
        width = self.size.width or app.size.width
        if palette is not None:
            # The palette's key, docked right: a border, its key, a space, its label and
            # a space at the end.
            shows = app.get_key_display(palette.binding), palette.binding.description
            width -= cell_len(shows[0]) + 3 + cell_len(shows[1])
        labels = dict(fit_keys([key for *_, key in entries], width))
        for binding, enabled, tooltip, key in entries:
            if key in labels:
                label = labels[key]
                yield FooterKey(
                    binding.key, key.display, label, binding.action,
                    disabled=not enabled, tooltip=tooltip,
                ).data_bind(compact=Footer.compact)  # fmt: skip
        if palette is not None:
            binding = palette.binding
            yield FooterKey(
                binding.key, app.get_key_display(binding), binding.description,
                binding.action, classes="-command-palette", disabled=not palette.enabled,
                tooltip=binding.tooltip or binding.description,
            )  # fmt: skip

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._fitted_to:
            self.call_after_refresh(self.recompose)


class FitTable(DataTable[Text]):
    """A table of whole rows whose columns fit its width (see :func:`._fit.plan_columns`).

    The rows are given as cells by column key (:meth:`show_rows`); the table keeps them
    and lays them out again when its width changes, keeping the cursor's row.
    """

    DEFAULT_CSS = "FitTable { scrollbar-gutter: stable; scrollbar-size-vertical: 1; }"

    def __init__(self, columns: Sequence[Col], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.specs = tuple(columns)
        self._rows: list[dict[str, str]] = []
        self._plan: tuple[Planned, ...] | None = None

    def show_rows(self, rows: Iterable[Mapping[str, str]]) -> None:
        """Show these rows (each a cell text by column key), in this order."""
        self._rows = [dict(r) for r in rows]
        self._draw(self._planned())

    def _planned(self) -> tuple[Planned, ...]:
        widest: dict[str, int] = {}
        for row in self._rows:
            for key, value in row.items():
                widest[key] = max(widest.get(key, 0), cell_len(value))
        return plan_columns(self.specs, self.scrollable_content_region.width, widest)

    def _draw(self, plan: tuple[Planned, ...]) -> None:
        at = self.cursor_row
        with self.app.batch_update():
            if plan != self._plan:
                self.clear(columns=True)
                for column in plan:
                    self.add_column(column.label, key=column.key, width=column.width)
                self._plan = plan
            else:
                self.clear()
            for row in self._rows:
                self.add_row(*(cell(row.get(column.key, "")) for column in plan))
            if self.row_count:
                self.move_cursor(row=min(at, self.row_count - 1))

    def on_resize(self) -> None:
        plan = self._planned()
        if plan != self._plan:
            self._draw(plan)
