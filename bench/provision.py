"""Benchmark: seconds to provision one hospital when 0, 50 and 200 hospitals already exist.

    python -m portal.dev.devstack exec -- .venv/bin/python bench/provision.py [--quick]
        [--mode migrate|clone] [--levels 0,50,200] [--reps N] [--extra-models N]
        [--fill replay|provision] [--db-name portal_bench] [--keep-db]

It never touches the development database: it drops and recreates a scratch database
(`portal_bench` by default) on the server named in DATABASE_URL, runs
`migrate_schemas --shared` and `platform_ensure` there, and drops it again at the end.

Every measured hospital goes through `tenants.services.hospital_provision`, the code path of
`manage.py create_hospital`. Modes:

* ``migrate`` (what the project does today): CREATE SCHEMA + every migration in the new schema.
* ``clone``: django-tenants' template-schema cloning. The bench builds a non-tenant schema
  ``template`` (CREATE SCHEMA + ``migrate_schemas --tenant --schema=template``) and sets
  ``TENANT_BASE_SCHEMA = "template"`` and ``TENANT_CREATION_FAKES_MIGRATIONS = True`` at run
  time (the project's settings files are not changed). ``create_schema`` then runs the
  pg-clone-schema function and ``migrate_schemas --fake`` on the copy.

Filling up to each level is not what is measured, so it is done quickly: the SQL that one real
``hospital_provision`` ran inside its new schema is captured once and replayed for each filler
hospital (``--fill replay``, about a hundred times faster). A catalogue fingerprint (tables,
columns, defaults, identities, indexes, constraints, sequences, migration rows, row counts)
of a filled schema is compared with that of the real one, and the run stops if they differ.
``--fill provision`` fills through ``hospital_provision`` instead (slow, for cross-checking).
The cloned schema's fingerprint is compared with the migrated one's too (``clone_equivalent``).

``--extra-models N`` adds a throw-away tenant app with N models (two per migration, each with
a foreign key, a unique and three other indexes, i.e. about ten catalogue objects per model)
through a bench-only settings module in a temporary folder, to see how each mode grows with
a bigger schema. Without it, only the current apps are timed.

The last line printed is one JSON object with the figures (median seconds per level).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

from _scratch import admin_sql, scratch_urls  # bench/ is on sys.path: the script's folder

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_SCHEMA = "template"
T_START = time.perf_counter()
# --quick must finish within a minute on a 2-core machine: if the fills and provisions would
# not fit, later levels are measured with fewer repetitions (at least one; every key is kept).
QUICK_BUDGET_SECONDS = 50.0




def say(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer repetitions (3); the whole run stays under a minute")
    p.add_argument("--mode", choices=["migrate", "clone"], default="migrate",
                   help="how hospital_provision builds the schema (default: migrate, as today)")
    p.add_argument("--levels", default="0,50,200",
                   help="numbers of existing hospitals to measure at (default 0,50,200)")
    p.add_argument("--reps", type=int, default=None,
                   help="provisions timed per level (default 7, 3 with --quick)")
    p.add_argument("--extra-models", type=int, default=0,
                   help="add a synthetic tenant app with this many models (default 0)")
    p.add_argument("--fill", choices=["replay", "provision"], default="replay",
                   help="how filler hospitals are made (default: replay captured SQL)")
    p.add_argument("--fill-jobs", type=int, default=2,
                   help="parallel connections for the replay fill (default 2)")
    p.add_argument("--db-name", default="portal_bench", help="scratch database (default portal_bench)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the scratch database at the end")
    args = p.parse_args(argv)
    args.levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    if args.reps is None:
        args.reps = 3 if args.quick else 7
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        p.error("--db-name: lowercase letters, digits and underscores only")
    return args


# --------------------------------------------------------------------------- scratch database


# --------------------------------------------------------------------------- synthetic app

SYNTH_SPEC = '''
"""Synthetic tenant models for bench/provision.py (generated; not part of the project)."""
from django.db import migrations, models
from django.utils import timezone

N = {n}
PER = {per}
MIGRATIONS = (N + PER - 1) // PER


def fields(i):
    target = "registration.department" if i == 0 else "benchsynth.synth%03d" % (i - 1)
    return [
        ("code", models.CharField(max_length=40, unique=True)),
        ("name", models.CharField(max_length=100)),
        ("note", models.TextField(blank=True)),
        ("amount_fen", models.BigIntegerField(default=0)),
        ("status", models.CharField(max_length=20, db_index=True, default="new")),
        ("created_at", models.DateTimeField(db_index=True, default=timezone.now)),
        ("is_active", models.BooleanField(default=True)),
        ("prev", models.ForeignKey(target, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")),
    ]


def indexes(i):
    return [models.Index(fields=["status", "created_at"], name="synth%03d_st_cr" % i)]


def operations(k):
    return [
        migrations.CreateModel(
            name="Synth%03d" % i,
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True,
                                               serialize=False, verbose_name="ID"))] + fields(i),
            options={{"indexes": indexes(i)}},
        )
        for i in range(k * PER, min(N, (k + 1) * PER))
    ]
'''

SYNTH_MODELS = '''
from django.db import models
from . import spec

for _i in range(spec.N):
    _attrs = {"__module__": __name__,
              "Meta": type("Meta", (), {"app_label": "benchsynth", "indexes": spec.indexes(_i)})}
    _attrs.update(dict(spec.fields(_i)))
    globals()["Synth%03d" % _i] = type("Synth%03d" % _i, (models.Model,), _attrs)
'''

SYNTH_MIGRATION = '''
from django.db import migrations
from benchsynth import spec


class Migration(migrations.Migration):
    dependencies = [{dep}]
    operations = spec.operations({k})
'''


def write_synthetic_app(n: int, per: int = 2) -> str:
    """Write app `benchsynth` and settings module `bench_settings` to a temp dir; return it."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_provision_"))
    app = tmp / "benchsynth"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "spec.py").write_text(SYNTH_SPEC.format(n=n, per=per))
    (app / "models.py").write_text(SYNTH_MODELS)
    (app / "migrations" / "__init__.py").write_text("")
    for k in range((n + per - 1) // per):
        dep = ('("registration", "0001_initial")' if k == 0
               else f'("benchsynth", "{k:04d}_synth")')
        (app / "migrations" / f"{k + 1:04d}_synth.py").write_text(SYNTH_MIGRATION.format(dep=dep, k=k))
    (tmp / "bench_settings.py").write_text(textwrap.dedent("""
        from portal.settings.test import *  # noqa: F403
        from portal.settings.test import INSTALLED_APPS, TENANT_APPS

        TENANT_APPS = list(TENANT_APPS) + ["benchsynth"]
        INSTALLED_APPS = list(INSTALLED_APPS) + ["benchsynth"]
    """))
    return str(tmp)


# --------------------------------------------------------------------------- schema fingerprint


def fingerprint(schema: str) -> dict:
    """What a schema is made of, with its own name blanked out, comparable across schemas."""
    from django.db import connection

    connection.set_schema_to_public()
    blank = re.compile(r'"?\b' + re.escape(schema) + r'\b"?\.')

    def rows(sql: str) -> list:
        with connection.cursor() as cur:
            cur.execute(sql, [schema])
            return [tuple(blank.sub("<S>.", v) if isinstance(v, str) else v for v in r)
                    for r in cur.fetchall()]

    fp = {
        "relations": rows("""
            SELECT c.relname, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1"""),
        "columns": rows("""
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity::text, pg_get_expr(d.adbin, d.adrelid), a.attcollation::regcollation::text
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0
              AND NOT a.attisdropped ORDER BY 1, 2"""),
        "indexes": rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1"),
        "constraints": rows("""
            SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
                   k.condeferrable, k.condeferred
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1, 2"""),
        "sequences": rows("""
            SELECT sequencename, data_type::text, start_value, increment_by, max_value,
                   last_value FROM pg_sequences WHERE schemaname = %s ORDER BY 1"""),
    }
    from django_tenants.utils import schema_context

    with schema_context(schema), connection.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        fp["migrations"] = cur.fetchall()
        counts = []
        for name, kind in fp["relations"]:
            if kind == "r":
                cur.execute(f'SELECT count(*) FROM "{name}"')
                counts.append((name, cur.fetchone()[0]))
        fp["row_counts"] = counts
    return fp


def fingerprint_diff(a: dict, b: dict, limit: int = 6) -> list[str]:
    out = []
    for key in a:
        sa, sb = set(map(tuple, a[key])), set(map(tuple, b[key]))
        for item in sorted(sa - sb, key=str)[:limit]:
            out.append(f"{key}: only in first: {item}")
        for item in sorted(sb - sa, key=str)[:limit]:
            out.append(f"{key}: only in second: {item}")
    return out


# --------------------------------------------------------------------------- fast fill


class SchemaRecipe:
    """The SQL one real hospital_provision ran inside its new schema, replayable elsewhere."""

    SKIP = re.compile(r"^\s*(SELECT|SAVEPOINT|RELEASE|ROLLBACK|SET\b|SHOW)", re.I)

    def __init__(self) -> None:
        self.schema: str | None = None
        self.captured: list[tuple[str, object, bool]] = []
        self.body = ""

    def wrapper(self, execute, sql, params, many, context):
        conn = context["connection"]
        if self.schema and getattr(conn, "schema_name", None) == self.schema and not self.SKIP.match(sql):
            self.captured.append((sql, params, many))
        return execute(sql, params, many, context)

    def finish(self) -> None:
        from django.db import connection

        statements = []
        import psycopg

        connection.ensure_connection()
        raw = psycopg.ClientCursor(connection.connection)  # binds client-side: has mogrify()
        with raw:
            for sql, params, many in self.captured:
                for p in (params if many else [params]):
                    stmt = sql if p is None else raw.mogrify(sql, p)
                    statements.append(stmt.rstrip().rstrip(";"))
        body = ";\n".join(statements)
        if re.search(r"\b" + re.escape(self.schema) + r"\b", body):
            raise RuntimeError(f"captured SQL names the schema {self.schema}; cannot replay it")
        self.body = body
        self.statements = len(statements)


def fill_replay(recipe: SchemaRecipe, start: int, count: int, jobs: int = 2, batch: int = 10) -> None:
    """Add `count` ready hospitals whose schemas are built by replaying the recipe.

    The hospital and domain rows go in first (one transaction); the schemas are then built by
    `jobs` threads, each on its own connection, `batch` schemas per transaction. PostgreSQL does
    the work (psycopg releases the GIL), so two jobs use both cores.
    """
    import threading

    import psycopg
    from django.db import connection, transaction

    from tenants.models import Domain, Hospital
    from tenants.services import schema_name_for

    connection.set_schema_to_public()
    codes = [f"f{start + i:05d}" for i in range(count)]
    with transaction.atomic():
        hospitals = Hospital.objects.bulk_create([
            Hospital(schema_name=schema_name_for(c), code=c, name=f"填充医院 {c}",
                     name_en=f"Filler {c}", is_ready=True) for c in codes])
        Domain.objects.bulk_create([
            Domain(domain=f"{h.code}.bench.localhost", tenant=h, is_primary=True) for h in hospitals])
    schemas = [h.schema_name for h in hospitals]
    batches = [schemas[i:i + batch] for i in range(0, len(schemas), batch)]
    lock = threading.Lock()
    errors: list[BaseException] = []
    done = [0]

    def worker() -> None:
        # No prepared statements: each batch is one multi-statement text, sent once.
        conn = psycopg.connect(os.environ["DATABASE_URL"], prepare_threshold=None)
        try:
            while True:
                with lock:
                    if not batches or errors:
                        return
                    names = batches.pop(0)
                with conn.transaction(), conn.cursor() as cur:  # one transaction per batch
                    for name in names:
                        cur.execute(f'CREATE SCHEMA "{name}";\n'
                                    f'SET LOCAL search_path TO "{name}", public;\n'
                                    f"{recipe.body};\n"
                                    "SET LOCAL search_path TO public")
                with lock:
                    done[0] += len(names)
                    if done[0] % 50 < len(names) and done[0] < count:
                        say(f"  filled {done[0]}/{count}")
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            with lock:
                errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def fill_provision(start: int, count: int) -> None:
    from tenants.services import hospital_provision

    for i in range(count):
        c = f"f{start + i:05d}"
        hospital_provision(code=c, name=f"填充医院 {c}", domain=f"{c}.bench.localhost")
        if (i + 1) % 25 == 0:
            say(f"  filled {i + 1}/{count}")


def analyze_catalogs() -> None:
    """What autovacuum would have done on a platform whose hospitals came over weeks."""
    from django.db import connection

    with connection.cursor() as cur:
        for t in ("pg_class", "pg_attribute", "pg_namespace", "pg_index", "pg_constraint",
                  "pg_depend", "pg_type", "pg_attrdef", "pg_sequence"):
            cur.execute(f"ANALYZE pg_catalog.{t}")


# --------------------------------------------------------------------------- measuring


class CloneTimer:
    """Measures (does not change) the two database calls of django-tenants' clone path."""

    def __init__(self) -> None:
        self.function_seconds = 0.0
        self.clone_seconds = 0.0

    def install(self) -> None:
        from django_tenants.clone import CloneSchema

        make_function = CloneSchema._create_clone_schema_function
        clone = CloneSchema.clone_schema
        timer = self

        def timed_make_function(self_):
            t = time.perf_counter()
            try:
                return make_function(self_)
            finally:
                timer.function_seconds += time.perf_counter() - t

        def timed_clone(self_, *a, **kw):
            t = time.perf_counter()
            try:
                return clone(self_, *a, **kw)
            finally:
                timer.clone_seconds += time.perf_counter() - t

        CloneSchema._create_clone_schema_function = timed_make_function
        CloneSchema.clone_schema = timed_clone


CLONE_TIMER = CloneTimer()


def provision_timed(code: str) -> tuple[float, dict]:
    """One hospital_provision; (seconds, seconds per step from its progress callback).

    Steps: checks, schema (create + migrate, or clone + fake migrate), domain,
    seed_and_ready; `schema_db` is the time spent inside database calls during the schema step
    (the rest of that step is Python); in clone mode `clone_sql` is CloneSchema.clone_schema
    (re-creating the pg-clone-schema function, which `clone_function` is, plus running it).
    """
    from django.db import connection

    from tenants.services import hospital_provision

    marks: list[float] = []
    db = [0.0] * 4

    def db_timer(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db[min(len(marks), 3)] += time.perf_counter() - t

    connection.set_schema_to_public()
    fn_before, clone_before = CLONE_TIMER.function_seconds, CLONE_TIMER.clone_seconds
    t0 = time.perf_counter()
    with connection.execute_wrapper(db_timer):
        hospital_provision(code=code, name=f"测试医院 {code}", name_en=f"Bench {code}",
                           domain=f"{code}.bench.localhost",
                           progress=lambda _m: marks.append(time.perf_counter()))
    t1 = time.perf_counter()
    steps = {}
    if len(marks) == 3:
        steps = {"checks": marks[0] - t0, "schema": marks[1] - marks[0],
                 "domain": marks[2] - marks[1], "seed_and_ready": t1 - marks[2],
                 "schema_db": db[1],
                 "clone_sql": CLONE_TIMER.clone_seconds - clone_before,
                 "clone_function": CLONE_TIMER.function_seconds - fn_before}
    return t1 - t0, steps


def hospital_count() -> int:
    from django_tenants.utils import get_public_schema_name

    from tenants.models import Hospital

    return Hospital.objects.exclude(schema_name=get_public_schema_name()).count()


def delete_hospital(code: str) -> None:
    from django.db import connection

    from tenants.models import Hospital

    connection.set_schema_to_public()
    Hospital.objects.get(code=code).delete(force_drop=True)


def build_template() -> float:
    """CREATE SCHEMA template + every tenant migration in it (it is not a tenant row)."""
    from django.core.management import call_command
    from django.db import connection

    t0 = time.perf_counter()
    connection.set_schema_to_public()
    with connection.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{TEMPLATE_SCHEMA}" CASCADE; CREATE SCHEMA "{TEMPLATE_SCHEMA}"')
    call_command("migrate_schemas", tenant=True, schema_name=TEMPLATE_SCHEMA,
                 interactive=False, verbosity=0)
    connection.set_schema_to_public()
    return time.perf_counter() - t0


def r3(x: float) -> float:
    return round(x, 4)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_url, admin_url = scratch_urls(args.db_name)

    # Point Django at the scratch database before it reads its settings.
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    if args.extra_models:
        sys.path.insert(0, write_synthetic_app(args.extra_models))
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"

    say(f"mode={args.mode} levels={args.levels} reps={args.reps} fill={args.fill} "
        f"extra_models={args.extra_models} quick={args.quick}")
    say(f"recreating scratch database {args.db_name} on {urlparse(bench_url).netloc}")
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    admin_sql(admin_url, f'CREATE DATABASE "{args.db_name}"')

    result: dict = {}
    try:
        result = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            say(f"dropped scratch database {args.db_name}")
    result["wall_seconds"] = round(time.perf_counter() - T_START, 1)
    # Other work on the machine shows up in the figures: say how busy it was.
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def run(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from tenants.services import platform_ensure

    t = time.perf_counter()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()
    platform_ensure(domains=["localhost"])
    say(f"shared schema migrated and platform tenant created in {time.perf_counter() - t:.2f}s")

    # A real hospital, provisioned the way the project does it today: warms the process up,
    # records the SQL for the fast fill, and gives the reference fingerprint. Then removed,
    # so that level 0 really starts with no hospital.
    recipe = SchemaRecipe()
    recipe.schema = "h_benchref"
    with connection.execute_wrapper(recipe.wrapper):
        ref_seconds, ref_steps = provision_timed("benchref")
    recipe.finish()
    ref_fp = fingerprint(recipe.schema)
    tables = sum(1 for _n, k in ref_fp["relations"] if k == "r")
    say(f"reference hospital (migrate path, cold) in {ref_seconds:.3f}s: {tables} tables, "
        f"{len(ref_fp['relations'])} relations, {len(ref_fp['migrations'])} migration rows; "
        f"captured {recipe.statements} statements for the fill")
    delete_hospital("benchref")

    extra: dict = {}
    if args.mode == "clone":
        extra["template_build_seconds"] = r3(build_template())
        settings.TENANT_BASE_SCHEMA = TEMPLATE_SCHEMA
        settings.TENANT_CREATION_FAKES_MIGRATIONS = True
        CLONE_TIMER.install()
        say(f"template schema {TEMPLATE_SCHEMA!r} built in {extra['template_build_seconds']:.3f}s; "
            "TENANT_BASE_SCHEMA and TENANT_CREATION_FAKES_MIGRATIONS set")
        warm_seconds, _ = provision_timed("benchclone")
        clone_fp = fingerprint("h_benchclone")
        diff = fingerprint_diff(ref_fp, clone_fp)
        extra["clone_equivalent"] = not diff
        say(f"warm-up clone in {warm_seconds:.3f}s; cloned schema "
            + ("matches the migrated one" if not diff else "DIFFERS from the migrated one:"))
        for line in diff:
            say("  " + line)
        delete_hospital("benchclone")

    per_level: dict = {}
    # Until a fill has been timed, guess a filler schema costs what the reference's DDL did.
    fill_each = ref_steps.get("schema_db", ref_seconds) / max(1, args.fill_jobs) if args.fill == "replay" \
        else ref_seconds
    provision_each = ref_seconds
    fill_total = 0.0
    filled = 0
    fill_checked = False
    for level in args.levels:
        have = hospital_count()
        if have < level:
            need = level - have
            say(f"filling {need} hospitals ({have} -> {level}) by {args.fill}")
            t = time.perf_counter()
            if args.fill == "replay":
                fill_replay(recipe, filled, need, jobs=args.fill_jobs)
            else:
                fill_provision(filled, need)
            analyze_catalogs()
            dt = time.perf_counter() - t
            fill_total += dt
            fill_each = dt / need
            say(f"  filled {need} in {dt:.2f}s ({dt / need * 1000:.1f} ms each)")
            if not fill_checked:
                diff = fingerprint_diff(ref_fp, fingerprint(f"h_f{filled:05d}"))
                if diff:
                    for line in diff:
                        say("  " + line)
                    raise SystemExit("[bench] a filled schema differs from a provisioned one")
                say("  a filled schema's fingerprint matches the provisioned reference")
                fill_checked = True
            filled += need
        elif have > level:
            say(f"level {level}: {have} hospitals exist already; measuring at {have}")
        reps = args.reps
        if args.quick:
            later = [lv for lv in args.levels if lv > level]
            fill_left = fill_each * max(0, (later[-1] if later else 0) - max(have, level))
            left = QUICK_BUDGET_SECONDS - (time.perf_counter() - T_START) - fill_left
            reps = max(1, min(args.reps, int(left / (provision_each * (1 + len(later))))))
            if reps < args.reps:
                say(f"level {level}: {reps} repetition(s) instead of {args.reps} to stay within "
                    f"the --quick budget of {QUICK_BUDGET_SECONDS:.0f}s")
        samples, steps = [], []
        for rep in range(reps):
            secs, st = provision_timed(f"m{level:05d}r{rep:02d}")
            samples.append(secs)
            steps.append(st)
            say(f"level {level}: provision {rep + 1}/{reps} in {secs:.3f}s"
                + (f" (schema step {st['schema']:.3f}s, of which database "
                   f"{st['schema_db']:.3f}s)" if st else ""))
        provision_each = statistics.median(samples)
        per_level[level] = {
            "existing": have,
            "reps": reps,
            "median": statistics.median(samples),
            "min": min(samples),
            "max": max(samples),
            "schema_step_median": statistics.median(s["schema"] for s in steps if s),
            "schema_db_median": statistics.median(s["schema_db"] for s in steps if s),
            "clone_sql_median": statistics.median(s["clone_sql"] for s in steps if s),
            "clone_function_median": statistics.median(s["clone_function"] for s in steps if s),
            "other_steps_median": statistics.median(
                s["checks"] + s["domain"] + s["seed_and_ready"] for s in steps if s),
        }
        say(f"level {level}: median {per_level[level]['median']:.3f}s "
            f"(min {per_level[level]['min']:.3f}, max {per_level[level]['max']:.3f})")

    out = {"bench": "provision"}
    for level in args.levels:
        out[f"seconds_at_{level}"] = r3(per_level[level]["median"])
    out["mode"] = args.mode
    out["reps"] = args.reps
    if any(per_level[lv]["reps"] != args.reps for lv in args.levels):
        out["reps_per_level"] = {str(lv): per_level[lv]["reps"] for lv in args.levels}
    out["quick"] = args.quick
    for level in args.levels:
        lv = per_level[level]
        out[f"min_max_at_{level}"] = [r3(lv["min"]), r3(lv["max"])]
        out[f"schema_step_at_{level}"] = r3(lv["schema_step_median"])
        out[f"schema_db_at_{level}"] = r3(lv["schema_db_median"])
        if args.mode == "clone":
            out[f"clone_sql_at_{level}"] = r3(lv["clone_sql_median"])
            out[f"clone_function_at_{level}"] = r3(lv["clone_function_median"])
        out[f"other_steps_at_{level}"] = r3(lv["other_steps_median"])
    out.update(extra)
    out.update({
        "tables_per_schema": tables,
        "relations_per_schema": len(ref_fp["relations"]),
        "migrations_per_schema": len(ref_fp["migrations"]),
        "extra_models": args.extra_models,
        "fill": args.fill,
        "fill_seconds": round(fill_total, 2),
        "hospitals_at_end": hospital_count(),
        "db": settings.DATABASES["default"]["NAME"],
    })
    return out


if __name__ == "__main__":
    sys.exit(main())
