"""The ``pricer`` command line: serve, check, fmt, quote, load, rebates, diff.

Every failure is one clear message on stderr and a non-zero exit, never a traceback:
exit 1 when the thing checked has errors (a ruleset, files that ``fmt --check`` would
change), exit 2 for bad input or an unusable database/file.

    pricer check rules/                    # diagnostics on stderr; "ok: N rules, version ..."
    pricer load standard_prices prices.csv
    pricer quote cart.json
    pricer quote --batch carts.parquet --out priced.parquet
    pricer rebates rules/ --history hist/ --period 2026-Q4 --out q4.parquet
    pricer diff rules/ next/ --history hist/ --period 2026-Q4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from pydantic import ValidationError

from server.settings import Settings, SettingsError, load_settings

BATCH_HELP = """\
CARTS.parquet holds one row per cart line:
  cart_id          text, required: lines with the same cart_id form one cart
  sku, qty         text, required (qty a decimal like "2" or "12.5")
  unit             text, optional (default: the SKU's base unit)
  date             text YYYY-MM-DD, required, the same on every line of a cart
  currency, customer_id, customer_tier, customer_region
                   text, optional, the same on every line of a cart
                   (currency defaults to the ruleset's)
The output has one row per line: cart_id, line_id, sku, status, price_list and the
amounts in minor units (unit_price_minor, list_amount_minor, discount_minor,
net_amount_minor, tax_minor, gross_amount_minor)."""

CART_COLUMNS = ("currency", "date", "customer_id", "customer_tier", "customer_region")
LINE_COLUMNS = ("sku", "qty", "unit")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class CliError(Exception):
    """A failure to report as one message; ``status`` is the exit code."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# ---- shared helpers -------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(db_path=args.db, rules_dir=args.rules)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _open_store(path: Path, *, read_only: bool = False) -> Any:
    from engine.ledger.store import Store, StoreError

    if read_only and not path.exists():
        raise CliError(
            f"no database at {path}: load data first (pricer load TABLE FILE, "
            "or python -m server.demo)"
        )
    try:
        return Store(path, read_only=read_only)
    except StoreError as exc:
        raise CliError(str(exc)) from None


def _sources(directory: Path) -> dict[str, str]:
    from engine.api import load_sources

    if not directory.exists():
        raise CliError(f"{directory}: no such ruleset directory")
    sources = load_sources(directory)
    if not sources:
        raise CliError(f"{directory}: no .rule files")
    return sources


def _read_json(path: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from None


def _validation_message(where: str, exc: ValidationError) -> str:
    from server.errors import clean_message, field_path

    errs = exc.errors()
    first = errs[0]
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{where}: {field_path(tuple(first['loc']))}: {clean_message(first['msg'])}{more}"


# ---- commands -------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    admin = (
        "enabled (bearer token from PRICER_ADMIN_TOKEN)"
        if settings.admin_token
        else ("disabled (set PRICER_ADMIN_TOKEN to publish rulesets over HTTP)")
    )
    print(f"pricer: database {settings.db_path}, rules {settings.rules_dir}", file=sys.stderr)
    print(f"pricer: admin endpoints {admin}", file=sys.stderr)
    print(f"pricer: http://{args.host}:{args.port}/docs", file=sys.stderr)
    if args.reload:
        os.environ["PRICER_DB_PATH"] = str(settings.db_path)
        os.environ["PRICER_RULES_DIR"] = str(settings.rules_dir)
        uvicorn.run(
            "server.app:app_from_env", factory=True, reload=True, host=args.host, port=args.port
        )
        return 0
    from server.app import StartupError, create_app

    try:
        app = create_app(settings)
    except StartupError as exc:
        raise CliError(str(exc), status=1) from None
    uvicorn.run(app, host=args.host, port=args.port, workers=1)
    return 0


def _data_for_check(settings: Settings) -> tuple[Any, str | None]:
    """The store's data for checking, or (None, why not) when it cannot be read."""
    from engine.ledger.store import Store, StoreError

    if not settings.db_path.exists():
        return None, f"no database at {settings.db_path}"
    try:
        with Store(settings.db_path, read_only=True) as store:
            return store.snapshot(), None
    except StoreError as exc:
        return None, str(exc)


def cmd_check(args: argparse.Namespace) -> int:
    from dsl.errors import render_all
    from engine.api import RuleError, check_ruleset, compile_ruleset

    settings = _settings(args)
    sources = _sources(Path(args.ruleset))
    data, skipped = _data_for_check(settings)
    diagnostics = check_ruleset(sources, data)
    if diagnostics:
        print(render_all(diagnostics, sources), file=sys.stderr)
    if any(d.severity == "error" for d in diagnostics):
        return 1
    if data is None:
        print(
            f"ok: {plural(len(sources), 'file')}, no errors (table and SKU checks skipped: {skipped})"
        )
        return 0
    try:
        plan = compile_ruleset(sources, data)
    except RuleError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    print(f"ok: {plural(len(plan.rule_names), 'rule')}, version {plan.version}")
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from engine.api import RuleError, format_sources

    directory = Path(args.ruleset)
    sources = _sources(directory)
    try:
        formatted = format_sources(sources)
    except RuleError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    changed = [path for path, text in sorted(formatted.items()) if sources.get(path) != text]
    if args.check:
        for path in changed:
            print(f"would reformat {path}", file=sys.stderr)
        if changed:
            print(
                f"{len(changed)} of {plural(len(sources), 'file')} would be reformatted",
                file=sys.stderr,
            )
            return 1
        print(f"{plural(len(sources), 'file')} already formatted")
        return 0
    for path in changed:
        target = Path(path)
        if not target.is_file():
            raise CliError(f"{path}: formatter returned a file that is not in {directory}")
        target.write_text(formatted[path], encoding="utf-8")
        print(f"reformatted {path}")
    print(f"{len(changed)} reformatted, {len(sources) - len(changed)} unchanged")
    return 0


def _plan(settings: Settings, rules_given: bool) -> Any:
    """Compile the ruleset to quote with: --rules if given, else the published one, else
    the rules directory; always against the store's data."""
    from engine.api import RuleError, compile_ruleset

    with _open_store(settings.db_path, read_only=True) as store:
        data = store.snapshot()
        published = None if rules_given else store.current_ruleset()
    sources = published if published is not None else _sources(settings.rules_dir)
    try:
        return compile_ruleset(sources, data)
    except RuleError as exc:
        raise CliError(f"the ruleset does not compile:\n{exc.render()}", status=1) from None


def _ledger_view(settings: Settings, plan: Any) -> Any:
    """What committed orders consumed (the ledger in the store), for quoting; None if the
    store has no ledger yet."""
    from engine.ledger.committed import Ledger

    with _open_store(settings.db_path, read_only=True) as store:
        if not Ledger.exists(store):
            return None
        return Ledger(store, create=False).view(plan)


def cmd_quote(args: argparse.Namespace) -> int:
    from engine.api import CartError, quote

    if args.batch:
        return _quote_batch(args)
    if not args.cart:
        raise CliError("quote needs CART.json (or --batch CARTS.parquet --out PRICED.parquet)")
    from server.errors import dumps
    from server.schemas import CartIn

    settings = _settings(args)
    try:
        cart = CartIn.model_validate(_read_json(args.cart))
    except ValidationError as exc:
        raise CliError(_validation_message(args.cart, exc)) from None
    plan = _plan(settings, args.rules is not None)
    try:
        response = quote(
            plan,
            cart.to_engine(),
            max_lines=settings.max_lines_per_cart,
            ledger=_ledger_view(settings, plan),
        )
    except CartError as exc:
        raise CliError(f"{args.cart}: {exc.code}: {exc.message}") from None
    sys.stdout.write(dumps(response, pretty=True).decode() + "\n")
    return 0


def split_cart_lines(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per line -> (one row per cart, one row per line with a 1-based line_id).

    Only the optional columns present in the file are passed on (absent = engine default).
    """
    missing = [c for c in ("cart_id", "sku", "qty") if c not in frame.columns]
    if missing:
        raise CliError(f"the carts file lacks column(s) {', '.join(missing)}")
    cart_cols = [c for c in CART_COLUMNS if c in frame.columns]
    line_cols = [c for c in LINE_COLUMNS if c in frame.columns]
    frame = frame.with_columns(
        pl.col(c).cast(pl.String) for c in ("cart_id", *cart_cols, *line_cols)
    )
    if frame.get_column("cart_id").null_count():
        raise CliError("the carts file has lines without a cart_id")
    if cart_cols:
        per_cart = frame.group_by("cart_id", maintain_order=True).agg(
            pl.col(c).n_unique() for c in cart_cols
        )
        mixed = per_cart.filter(pl.any_horizontal(pl.col(c) > 1 for c in cart_cols))
        if mixed.height:
            first = mixed.row(0, named=True)
            bad = [c for c in cart_cols if first[c] > 1]
            raise CliError(f"cart {first['cart_id']!r}: lines disagree on {', '.join(bad)}")
    carts = frame.select("cart_id", *cart_cols).unique("cart_id", keep="first", maintain_order=True)
    lines = frame.select(
        "cart_id",
        (pl.int_range(pl.len()).over("cart_id") + 1).cast(pl.String).alias("line_id"),
        *line_cols,
    )
    return carts, lines


def _quote_batch(args: argparse.Namespace) -> int:
    from engine.api import CartError, DataError, price_frames

    if not args.out:
        raise CliError("quote --batch needs --out PRICED.parquet")
    settings = _settings(args)
    try:
        frame = pl.read_parquet(args.batch)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"{args.batch}: cannot read parquet: {first}") from None
    carts, lines = split_cart_lines(frame)
    plan = _plan(settings, args.rules is not None)
    if "currency" in carts.columns:  # an empty currency means the ruleset's, as in JSON carts
        carts = carts.with_columns(pl.col("currency").fill_null(plan.currency))
    try:
        priced = price_frames(plan, carts, lines, ledger=_ledger_view(settings, plan))
    except (CartError, DataError) as exc:
        raise CliError(f"{args.batch}: {getattr(exc, 'message', None) or exc}") from None
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        priced.write_parquet(out)
    except OSError as exc:
        raise CliError(f"{out}: {exc.strerror or exc}") from None
    print(f"priced {lines.height} lines in {carts.height} carts -> {out}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from engine.core.data import DataError

    settings = _settings(args)
    if args.table == "ledger":
        return _load_ledger(args, settings)
    with _open_store(settings.db_path) as store:
        try:
            report = store.load_table(args.table, args.file)
        except DataError as exc:
            message = str(exc)
            raise CliError(message if args.file in message else f"{args.file}: {message}") from None
    print(
        f"loaded {plural(report.rows, 'row')} into {report.table} "
        f"({report.kind} table; columns: {', '.join(report.columns)})"
    )
    return 0


def _load_ledger(args: argparse.Namespace, settings: Settings) -> int:
    """``pricer load ledger FILE``: imported history (a JSON object, or one with a
    ``ledger`` key, as in the scenario files); amounts in the ruleset currency."""
    from engine.ledger.committed import LedgerError

    try:
        content = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.file}: not JSON: {exc}") from None
    block = content.get("ledger", content) if isinstance(content, dict) else None
    if not isinstance(block, dict):
        raise CliError(
            f"{args.file}: expected a JSON object with budget_used, uses, gift_stock_used, special_consumed or committed_lines"
        )
    currency = _plan(settings, args.rules is not None).currency
    if block.get("currency") not in (None, "", currency):
        # the ledger keeps bare minor units of the ruleset currency: no conversion on import
        raise CliError(
            f"{args.file}: the history is in {block['currency']}, the ruleset in {currency}; ledger amounts are kept in the "
            f"ruleset currency, so convert the file to {currency} first (nothing was loaded)"
        )
    with _open_store(settings.db_path) as store:
        try:
            rows = store.ledger.seed(block, str(currency))
        except LedgerError as exc:
            raise CliError(f"{args.file}: {exc}") from None
    print(
        f"loaded {plural(rows, 'ledger row')} into the ledger (imported history, amounts in {currency})"
    )
    return 0


def _table_text(frame: pl.DataFrame) -> str:
    """A plain aligned text table (the summary printed at the end of a run)."""
    cols = frame.columns
    cells = [[("" if v is None else str(v)) for v in row] for row in frame.iter_rows()]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    right = [frame.schema[c].is_numeric() or c in ("total", "delta", "amount") for c in cols]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _write_frame(frame: pl.DataFrame, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            frame.write_csv(out)
        elif out.suffix.lower() in (".parquet", ".pq"):
            frame.write_parquet(out)
        else:
            raise CliError(f"{out}: write .parquet or .csv")
    except OSError as exc:
        raise CliError(f"{out}: {exc.strerror or exc}") from None


class _ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, or --progress)."""

    def __init__(self, enabled: bool) -> None:
        import time

        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, name: str) -> None:
        import time

        if not self.enabled:
            return
        width = 24
        filled = width * done // max(total, 1)
        elapsed = time.monotonic() - self.started
        end = "\n" if done >= total else ""
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:6.1f}s {name[:40]:<40}{end}"
        )
        sys.stderr.flush()


def cmd_rebates(args: argparse.Namespace) -> int:
    import datetime as dt

    from dsl.errors import RuleError
    from engine.api import compile_policies
    from engine.batch.history import read_history, store_history
    from engine.batch.rebate_runs import save_run, summary, with_deltas
    from engine.batch.rebates import RebateError, parse_period, run_policies
    from engine.core.data import DataError

    settings = _settings(args)
    sources = _sources(Path(args.ruleset))
    store = _open_store(settings.db_path)
    try:
        data = store.snapshot()
        try:
            policies = compile_policies(sources, data)
        except RuleError as exc:
            raise CliError(f"the ruleset does not check:\n{exc.render()}", status=1) from None
        if not policies.count:
            raise CliError(
                f"{args.ruleset}: no rebate, commission, partner tiers or fund declarations"
            )
        try:
            period = parse_period(args.period)
            as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
            if as_of is None:  # a period not over yet is an accrual up to today
                from dsl.check import today_in

                today = today_in(policies.timezone)
                as_of = today if today < period.end else None
        except RebateError as exc:
            raise CliError(exc.message) from None
        except ValueError:
            raise CliError(f"--as-of {args.as_of!r} is not a date (YYYY-MM-DD)") from None
        try:
            history = (
                read_history(args.history, policies.currency)
                if args.history
                else store_history(store, policies.currency)
            )
            progress = _ProgressBar(args.progress or sys.stderr.isatty())
            result = run_policies(
                policies, history, period, as_of=as_of, partner=args.partner, progress=progress
            )
        except RebateError as exc:
            raise CliError(f"{exc.code}: {exc.message}") from None
        except DataError as exc:
            raise CliError(str(exc)) from None
        rows = with_deltas(store, result, policies.currency)
        run_id = (
            save_run(store, result, rows, policies.version, history.source)
            if not args.no_store
            else None
        )
    finally:
        store.close()
    out_rows = rows.drop("amount_minor")
    if args.out:
        _write_frame(out_rows, Path(args.out))
    for name, why in result.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    kind = f"accrual as of {result.as_of}" if result.accrual else "final"
    print(
        f"{period.label} ({period.start}..{period.end}), {kind}: {plural(rows.height, 'row')}"
        + (f", run {run_id}" if run_id else "")
        + (f" -> {args.out}" if args.out else "")
    )
    print(_table_text(summary(rows, policies.currency)))
    if args.show:
        print()
        print(
            _table_text(
                out_rows.select(
                    "partner",
                    "policy",
                    "basis",
                    "target",
                    "attainment",
                    "step",
                    "rate",
                    "amount",
                    "explanation",
                )
            )
        )
    return 0


def _money_columns(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Minor-unit columns as decimal text in each row's ``currency`` (small frames: reports)."""
    from engine.core.money import format_money

    out = []
    for col in columns:
        out.append(
            pl.Series(
                col,
                [
                    format_money(int(v), c)
                    for v, c in zip(frame[col].to_list(), frame["currency"].to_list(), strict=True)
                ],
                dtype=pl.String,
            )
        )
    return frame.with_columns(out)


def cmd_diff(args: argparse.Namespace) -> int:
    from engine.api import RuleError, compile_ruleset
    from engine.batch.history import read_history, store_history
    from engine.batch.rebates import RebateError, parse_period
    from engine.batch.whatif import FIGURES, diff
    from engine.core.data import DataError

    settings = _settings(args)
    with _open_store(settings.db_path, read_only=True) as store:
        data = store.snapshot()
        plans = []
        for directory in (args.old, args.new):
            sources = _sources(Path(directory))
            try:
                plans.append(compile_ruleset(sources, data))
            except RuleError as exc:
                raise CliError(f"{directory} does not compile:\n{exc.render()}", status=1) from None
        old, new = plans
        try:
            history = (
                read_history(args.history, old.currency)
                if args.history
                else store_history(store, old.currency)
            )
            lines = history.lines
            label = "all dates"
            if args.period:
                period = parse_period(args.period)
                lines = lines.filter(pl.col("date").is_between(period.start, period.end))
                label = period.label
            frame = lines.collect()
        except RebateError as exc:
            raise CliError(exc.message) from None
        except DataError as exc:
            raise CliError(str(exc)) from None
        customers = None
        if args.customers:
            if args.customers not in data.tables:
                raise CliError(
                    f"--customers {args.customers}: no such table (load it with pricer load)"
                )
            customers = data.tables[args.customers]
    if frame.height == 0:
        raise CliError(f"no order lines in the history for {label}")
    report = diff(old, new, frame, customers)
    money = [f"{f}_{t}" for f in FIGURES for t in ("old", "new")] + ["net_delta"]
    orders = frame["order_id"].n_unique()
    print(
        f"what-if on {plural(orders, 'order')}, {plural(frame.height, 'line')} ({label}): {old.version} -> {new.version}"
    )
    print()
    print("totals")
    print(_table_text(_money_columns(report.totals, money)))
    for title, table, key in (
        ("by partner", report.by_partner, "customer_id"),
        ("by SKU", report.by_sku, "sku"),
    ):
        print()
        print(f"{title} (top {args.top} by net change)")
        shown = _money_columns(
            table.head(args.top),
            ["net_old", "net_new", "net_delta", "discount_old", "discount_new"],
        )
        print(
            _table_text(
                shown.select(
                    key,
                    "currency",
                    "lines",
                    "changed",
                    "discount_old",
                    "discount_new",
                    "net_old",
                    "net_new",
                    "net_delta",
                )
            )
        )
    print()
    print("discount by rule")
    print(
        _table_text(
            _money_columns(report.by_rule, ["discount_old", "discount_new", "discount_delta"])
        )
    )
    print()
    print(f"lines whose net changed most (top {args.top})")
    top = (
        report.lines.filter(pl.col("net_delta") != 0)
        .sort(pl.col("net_delta").abs(), "order_id", "line_id", descending=[True, False, False])
        .head(args.top)
    )
    print(
        _table_text(
            _money_columns(top, ["net_old", "net_new", "net_delta"]).select(
                "order_id", "line_id", "customer_id", "sku", "net_old", "net_new", "net_delta"
            )
        )
    )
    if args.out:
        _write_frame(report.lines, Path(args.out))
        print(f"\nevery line -> {args.out}")
    return 0


# ---- the parser -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--db", metavar="PATH", help="DuckDB file (default: PRICER_DB_PATH or data/pricer.duckdb)"
    )
    common.add_argument(
        "--rules", metavar="DIR", help="ruleset directory (default: PRICER_RULES_DIR or rules)"
    )

    parser = argparse.ArgumentParser(
        prog="pricer", description="Pricing and promotion service: rules, data and quotes."
    )
    parser.add_argument(
        "--db", metavar="PATH", default=None, help="DuckDB file (default: data/pricer.duckdb)"
    )
    parser.add_argument(
        "--rules", metavar="DIR", default=None, help="ruleset directory (default: rules)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help, **kw)
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "run the HTTP API (uvicorn, one worker)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--reload", action="store_true", help="restart on code changes (development)")

    p = add("check", cmd_check, "check a ruleset against the loaded data; exit 1 on errors")
    p.add_argument("ruleset", metavar="RULESET_DIR")

    p = add("fmt", cmd_fmt, "rewrite a ruleset's files in the canonical layout")
    p.add_argument("ruleset", metavar="RULESET_DIR")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 listing files that would change",
    )

    p = add(
        "quote",
        cmd_quote,
        "price a cart (JSON, '-' for stdin) or a batch of carts (Parquet)",
        epilog=BATCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cart", metavar="CART.json", nargs="?")
    p.add_argument("--batch", metavar="CARTS.parquet", default=None)
    p.add_argument("--out", metavar="PRICED.parquet", default=None)

    p = add("load", cmd_load, "load a CSV or Parquet file as a data table (all rows or none)")
    p.add_argument(
        "table",
        metavar="TABLE",
        help="catalog, fx_rates, tax_rates, order_lines, returns, events, a table name, or 'ledger' (imported ledger state, JSON)",
    )
    p.add_argument("file", metavar="FILE")

    p = add(
        "rebates", cmd_rebates, "compute rebates, commissions, partner tiers and funds for a period"
    )
    p.add_argument("ruleset", metavar="RULESET_DIR")
    p.add_argument(
        "--history",
        metavar="H",
        default=None,
        help="order_lines file, or a directory with order_lines, returns, events (default: the store's)",
    )
    p.add_argument(
        "--period", required=True, help="2026-Q4, 2026-11, 2026 or 2026-01-01..2026-06-30"
    )
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="DATE",
        default=None,
        help="cut an open period at DATE (an accrual run); default: the period's end",
    )
    p.add_argument("--partner", default=None, help="only this partner")
    p.add_argument(
        "--out", metavar="R.parquet", default=None, help="write every result row (.parquet or .csv)"
    )
    p.add_argument("--show", action="store_true", help="print every result row after the summary")
    p.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    p.add_argument(
        "--no-store", dest="no_store", action="store_true", help="do not keep the run in the store"
    )

    p = add("diff", cmd_diff, "re-price historical orders under two rulesets and compare")
    p.add_argument("old", metavar="OLD_RULESET_DIR")
    p.add_argument("new", metavar="NEW_RULESET_DIR")
    p.add_argument(
        "--history",
        metavar="H",
        default=None,
        help="order_lines file, or a directory with order_lines (default: the store's)",
    )
    p.add_argument(
        "--period", default=None, help="only orders in 2026-Q4, 2026-11, 2026 or a date range"
    )
    p.add_argument(
        "--customers",
        metavar="TABLE",
        default=None,
        help="a data table (id, tier, region, group) giving each order's customer attributes",
    )
    p.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    p.add_argument(
        "--out",
        metavar="DIFF.parquet",
        default=None,
        help="write every line's old and new figures (.parquet or .csv)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except CliError as exc:
        print(f"pricer {args.command}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last guard: a message, never a traceback
        print(
            f"pricer {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
