"""Text as LaTeX for the paper's generated tables and numbers: plain text escaped, a prediction's law
typeset as math, numbers in scientific or fixed notation with true minus signs, and the tabular layout
every generated table shares (docs/analysis.md#the-paper)."""

from __future__ import annotations

import re

import numpy as np

UNICODE_TEX = {
    "λ": r"$\lambda$",
    "η": r"$\eta$",
    "σ": r"$\sigma$",
    "τ": r"$\tau$",
    "μ": r"$\mu$",
    "·": r"$\cdot$",
    "²": r"$^2$",
    "∝": r"$\propto$",
    "√": r"$\surd$",
    "∞": r"$\infty$",
    "−": r"$-$",
    "×": r"$\times$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "§": r"$^\S$",
    "–": "--",
    "—": "---",
}
TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex(text: str) -> str:
    """Plain text (a setting, a field's value, a prediction's source) safe in LaTeX, symbols as math."""
    return "".join(TEX_SPECIAL.get(ch) or UNICODE_TEX.get(ch, ch) for ch in str(text))


LAW_SYMBOLS = {"λ": r"\lambda ", "η": r"\eta ", "σ": r"\sigma ", "∝": r"\propto ", "·": r"\cdot ", "²": "^2"}
LAW_OPERATORS = set("∝·=/()")
LAW_CHARACTERS = (
    set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*. ") | LAW_OPERATORS | set(LAW_SYMBOLS)
)
LAW_TOKEN = re.compile(r"sqrt\(|[A-Za-zλησ]+(?:_[A-Za-z]+)?\*?|\S")


def law_tex(source: str) -> str:
    r"""A prediction's source, "Authors year: law", with its law typeset as math: subscripts, starred optima,
    square roots, names of quantities upright ("λ_t* ∝ B/(η·N_train)" gives $\lambda_t^* \propto B/(\eta\cdot
    N_\text{train})$). A law with a character outside LAW_CHARACTERS is set as plain text."""
    who, colon, law = source.rpartition(": ")
    if not colon or not set(law) <= LAW_CHARACTERS:
        return tex(source)
    math, closers, previous = [], [], None
    for match in LAW_TOKEN.finditer(law):
        token = match.group()
        if (
            previous is not None
            and match.start() > previous.end()
            and not {previous.group()[-1], token[0]} & LAW_OPERATORS
        ):
            math.append(r"\ ")  # a space between two words ("η_layer·λ_t constant") stays a space
        previous = match
        if token == "sqrt(":
            math.append(r"\sqrt{"), closers.append("}")
        elif token == "(":
            math.append("("), closers.append(")")
        elif token == ")":
            math.append(closers.pop() if closers else ")")
        elif token in LAW_SYMBOLS or token in "=/":
            math.append(LAW_SYMBOLS.get(token, token))
        else:
            name, _, subscript = token.rstrip("*").partition("_")
            name = LAW_SYMBOLS.get(name) or (rf"\mathrm{{{name}}}" if len(name) > 1 else name)
            if subscript:
                name += f"_{subscript}" if len(subscript) == 1 else rf"_\text{{{subscript}}}"
            math.append(name + ("^*" if token.endswith("*") else ""))
    if closers:  # a bracket left open: as math it would not compile
        return tex(source)
    return f"{tex(who)}: ${''.join(math).strip()}$"


def sci(x: float) -> str:
    if not np.isfinite(x) or x <= 0:
        return "--"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"${mantissa}\\!\\times\\!10^{{{int(exponent)}}}$"


def interval(x: float, lo: float, hi: float, fmt=sci) -> str:
    return f"{fmt(x)} [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else f"{fmt(x)} [open]"


def fixed(x: float, digits: int = 2) -> str:
    """x to ``digits`` decimals with a minus sign; a negative number that rounds to zero prints as 0; ±∞ as such
    (a bootstrap check's end that over a tail's share of replicates went past)."""
    if np.isinf(x):
        return r"$\infty$" if x > 0 else r"$-\infty$"
    return "--" if not np.isfinite(x) else minus(f"{x:.{digits}f}".replace(f"-{0:.{digits}f}", f"{0:.{digits}f}"))


def minus(text: str) -> str:
    """A number's hyphen as a minus sign ("2--6", a range, stays)."""
    return re.sub(r"(?<!-)-(?=\d)", "$-$", text)


def signed(x: float) -> str:
    """A predicted exponent as written: +0.5, -0.5, 0."""
    return f"{x:+g}" if x else "0"


def tabular(columns: str, header: str, lines: list[str]) -> str:
    return "\n".join(
        [
            rf"\begin{{tabular}}{{{columns}}}",
            r"\toprule",
            header + r" \\",
            r"\midrule",
            *[line + r" \\" for line in lines],
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def within_page(table: str) -> str:
    """A table shrunk to the text width if it is wider (a point named by two axes is)."""
    return f"\\adjustbox{{max width=\\linewidth}}{{{table}}}\n"


def heading(experiment: str, columns: int) -> str:
    """A table row naming the experiment whose rows follow (a column of names would not fit the page)."""
    return f"\\multicolumn{{{columns}}}{{l}}{{\\textit{{{tex(experiment)}}}}}"


AXIS_HEADERS = {"width": "width", "n_train": r"$N_\mathrm{train}$", "batch_size": "$B$"}
