"""A table as text cells with a bold mask, written as Markdown, LaTeX and CSV (the CSV holds the
numbers behind the cells, unformatted, for further analysis)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from braincl.units import format_bytes

FORMATS = ("md", "tex", "csv")


def budget_label(b) -> str:
    return "no budget" if b is None or pd.isna(b) else format_bytes(int(b))


def mean_std_cell(mean: float, std: float, n: int, scale: float = 100.0, digits: int = 1) -> str:
    """'78.1 ± 0.4 (n=3)'; a single seed has no spread, so only its value is shown."""
    if n > 1 and pd.notna(std):
        return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f} (n={n})"
    return f"{mean * scale:.{digits}f} (n={n})"


@dataclass
class Table:
    name: str
    caption: str
    cells: pd.DataFrame                    # strings; index = row labels, columns = headers
    bold: pd.DataFrame | None = None       # same shape, True where the cell is the best
    numbers: pd.DataFrame | None = None    # tidy numbers for the CSV
    note: str | None = None                # set when there is no data
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.note is not None

    def _rows(self, bold_fmt: str):
        for idx, row in self.cells.iterrows():
            label = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
            vals = []
            for col, v in row.items():
                v = "–" if pd.isna(v) or v == "" else str(v)
                if self.bold is not None and bool(self.bold.at[idx, col]):
                    v = bold_fmt.format(v)
                vals.append(v)
            yield label, vals

    def markdown(self) -> str:
        if self.empty:
            return f"**{self.name}**: {self.note}\n"
        row_names = " / ".join(n for n in self.cells.index.names if n)
        head = [row_names] + [str(c) for c in self.cells.columns]
        lines = [f"Table: {self.caption}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for label, vals in self._rows("**{}**"):
            lines.append("| " + " | ".join([label, *vals]) + " |")
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def latex(self) -> str:
        esc = lambda s: (str(s).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%")  # noqa: E731
                         .replace("_", r"\_").replace("#", r"\#").replace("±", r"$\pm$").replace("Δ", r"$\Delta$")
                         .replace("–", "--").replace("−", "-"))
        if self.empty:
            return f"% {self.name}: {self.note}\n"
        ncol = len(self.cells.columns) + 1
        head = [esc(" / ".join(n for n in self.cells.index.names if n))] + [esc(c) for c in self.cells.columns]
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(self.caption)}}}", rf"\label{{tab:{self.name}}}",
                 r"\resizebox{\linewidth}{!}{%", rf"\begin{{tabular}}{{l{'r' * (ncol - 1)}}}", r"\toprule",
                 " & ".join(head) + r" \\", r"\midrule"]
        for label, vals in self._rows("\x00{}\x01"):
            vals = [esc(v).replace("\x00", r"\textbf{").replace("\x01", "}") for v in vals]
            lines.append(" & ".join([esc(label), *vals]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
        lines += [f"% {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        esc = html.escape
        if self.empty:
            return f"<p><b>{esc(self.name)}</b>: {esc(self.note)}</p>\n"
        row_names = " / ".join(n for n in self.cells.index.names if n)
        head = "".join(f"<th>{esc(str(c))}</th>" for c in [row_names, *self.cells.columns])
        body = []
        for label, vals in self._rows("\x00{}\x01"):
            cells = "".join(f"<td>{esc(v).replace(chr(0), '<b>').replace(chr(1), '</b>')}</td>" for v in vals)
            body.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return (f"<table><caption>{esc(self.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
                + "\n".join(body) + "\n</tbody></table>\n" + (f"<ul>{notes}</ul>\n" if notes else ""))

    def write(self, out_dir: str | Path) -> list[Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / f"{self.name}.{ext}" for ext in FORMATS]
        numbers = self.numbers if self.numbers is not None and not self.empty else pd.DataFrame({"note": [self.note]})
        for path, text in zip(paths, (self.markdown(), self.latex(), numbers.to_csv(index=False))):
            write_text(path, text)
        return paths


def write_text(path: str | Path, text: str) -> None:
    """Atomic: a temporary file in the same folder renamed into place, so no reader sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
