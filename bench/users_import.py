"""Bulk import throughput: `authswitch users import` against a fast local SCIM endpoint.

    python -m bench.users_import                    # from the repository root, ~1-2 minutes
    python -m bench.users_import --users 50000 --rounds 1

The target is a minimal aiohttp SCIM endpoint in its own process (users kept in a dict, 409 on
a known userName, /Bulk when offered), so the two CPUs are shared between the importer and the
target as they would be with a real provider on another machine... minus the network. It is
restarted empty for every run. Per round and transport:

- `reference`: the raw aiohttp client doing the same creates (json.loads of each line, the
  document as a dict, the same batches and parallelism), with no validation, no checkpoint, no
  report: what the import costs on top of the HTTP work;
- `authswitch`: `python -m proxy users import FILE --scim-url ...` as a process, wall time
  (start-up, the validation pre-pass, checkpointing and the report included).

And once per round: `authswitch` with `broker.provisioner: {type: workos}` pointed at the same
endpoint's WorkOS-shaped `/user_management/users` (one POST per user, 16 in flight), then with
password hashes instead of passwords (bcrypt passed as is, Django pbkdf2 and werkzeug scrypt
rewritten in the target's documented form) to WorkOS and to the Kratos-shaped
`/admin/identities`, and (bcrypt and salted SHA-256, what Okta takes) with `--target okta` to
the Okta-shaped `/api/v1/users`, every create checked to carry its hash.

Then, in this process: the per-user cost of the validation pre-pass, and of building a User
document with scim2-models against the dict the hot loop builds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_USERS_PER_SECOND = 1_500_000 / (30 * 60)  # 833: 1.5 M users in 30 minutes
REPO = Path(__file__).resolve().parent.parent


# -- the fast target (its own process) ---------------------------------------------------------


def serve_target(port: int, bulk: bool) -> None:
    from aiohttp import web

    users: dict[str, int] = {}
    hashed = [0]  # creates that carried a password hash in the target's documented field

    def create(document: dict[str, Any]) -> int:
        key = str(document.get("userName") or document["email"]).casefold()
        if key in users:
            return 409
        users[key] = len(users)
        return 201

    async def config(request: web.Request) -> web.Response:
        bulk_config = {"supported": bulk, "maxOperations": 1000, "maxPayloadSize": 4 << 20}
        return web.json_response({"bulk": bulk_config})

    async def post_user(request: web.Request) -> web.Response:
        status = create(json.loads(await request.read()))
        body = {"id": str(len(users))} if status == 201 else {"scimType": "uniqueness"}
        return web.json_response(body, status=status)

    async def post_bulk(request: web.Request) -> web.Response:
        operations = json.loads(await request.read())["Operations"]
        results = [
            {"method": "POST", "bulkId": op["bulkId"], "status": str(create(op["data"]))}
            for op in operations
        ]
        return web.json_response({"Operations": results})

    async def workos_users(request: web.Request) -> web.Response:
        if request.method == "GET":  # the start-up probe
            known = request.query["email"].casefold() in users
            return web.json_response({"data": [{}] if known else []})
        body = json.loads(await request.read())
        if create(body) == 409:
            return web.json_response({"code": "email_not_available"}, status=422)
        hashed[0] += bool(body.get("password_hash") and body.get("password_hash_type"))
        return web.json_response({"id": str(len(users))}, status=201)

    async def kratos_identities(request: web.Request) -> web.Response:
        if request.method == "GET":  # the start-up probe
            known = request.query["credentials_identifier"].casefold() in users
            return web.json_response([{}] if known else [])
        body = json.loads(await request.read())
        if create({"email": body["traits"]["email"]}) == 409:
            return web.json_response({"error": {"code": 409}}, status=409)
        config = body.get("credentials", {}).get("password", {}).get("config", {})
        hashed[0] += str(config.get("hashed_password", "")).startswith(("$", "{"))
        return web.json_response({"id": str(len(users))}, status=201)

    async def okta_user(request: web.Request) -> web.Response:  # the start-up probe
        if request.match_info["login"].casefold() in users:
            return web.json_response({"id": "0"})
        return web.json_response({"errorCode": "E0000007"}, status=404)

    async def okta_users(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if create({"email": body["profile"]["login"]}) == 409:
            cause = {"errorSummary": "login: An object with this field already exists"}
            return web.json_response({"errorCode": "E0000001", "errorCauses": [cause]}, status=400)
        stored = body.get("credentials", {}).get("password", {}).get("hash", {})
        hashed[0] += bool(stored.get("algorithm") and stored.get("value"))
        return web.json_response({"id": str(len(users))}, status=200)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"totalResults": len(users), "hashed": hashed[0]})

    app = web.Application(client_max_size=8 << 20)
    app.router.add_get("/v2/ServiceProviderConfig", config)
    app.router.add_post("/v2/Users", post_user)
    app.router.add_post("/v2/Bulk", post_bulk)
    app.router.add_get("/v2/count", count)
    app.router.add_route("*", "/user_management/users", workos_users)
    app.router.add_route("*", "/admin/identities", kratos_identities)
    app.router.add_get("/api/v1/users/{login}", okta_user)
    app.router.add_post("/api/v1/users", okta_users)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Target:
    def __init__(self, bulk: bool) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        args = [sys.executable, "-m", "bench.users_import", "--serve", str(self.port)]
        self.process = subprocess.Popen([*args, "--bulk" if bulk else "--no-bulk"], cwd=REPO)
        self.url = f"http://127.0.0.1:{self.port}/v2"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def count(self, what: str = "totalResults") -> int:
        import httpx

        return int(httpx.get(self.url + "/count", timeout=10).json()[what])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# -- the runs ----------------------------------------------------------------------------------


def generate(path: Path, count: int) -> None:
    with path.open("w") as file:
        for i in range(count):
            user = {
                "email": f"user{i:07d}@example.com",
                "external_id": f"legacy-{i}",
                "given_name": f"Given{i}",
                "family_name": f"Family{i}",
                "email_verified": True,
                "password": f"generated-password-{i:07d}",
            }
            file.write(json.dumps(user) + "\n")


def generate_hashed(path: Path, count: int, *, okta: bool = False) -> None:
    """The same users with a password hash each instead of a password: one hash per scheme,
    computed once and reused (the import parses and rewrites; it never checks a password).
    `okta`: the schemes Okta takes (bcrypt, salted SHA-256 as `{SSHA256}`)."""
    import base64
    import hashlib

    import bcrypt

    password = b"generated-password"
    pbkdf2 = base64.b64encode(hashlib.pbkdf2_hmac("sha512", password, b"salt", 210_000)).decode()
    scrypt = hashlib.scrypt(password, salt=b"salt", n=1024, r=8, p=1, dklen=64).hex()
    ssha256 = base64.b64encode(hashlib.sha256(password + b"saltsalt").digest() + b"saltsalt")
    hashes = [
        (bcrypt.hashpw(password, bcrypt.gensalt(4)).decode(), "bcrypt"),
        (f"pbkdf2_sha512$210000$salt${pbkdf2}", "pbkdf2"),
        (f"scrypt:1024:8:1$salt${scrypt}", "scrypt"),
    ]
    if okta:
        hashes = [hashes[0], ("{SSHA256}" + ssha256.decode(), "ssha")]
    with path.open("w") as file:
        for i in range(count):
            encoded, kind = hashes[i % len(hashes)]
            user = {
                "email": f"user{i:07d}@example.com",
                "first_name": f"Given{i}",
                "last_name": f"Family{i}",
                "email_verified": True,
                "password_hash": encoded,
                "password_hash_type": kind,
            }
            file.write(json.dumps(user) + "\n")


def reference_document(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": user["external_id"],
        "userName": user["email"],
        "name": {"familyName": user["family_name"], "givenName": user["given_name"]},
        "active": True,
        "password": user["password"],
        "emails": [{"value": user["email"], "primary": True}],
    }


async def reference_import(
    url: str, lines: list[bytes], bulk: bool, batch: int, parallel: int
) -> None:
    """The raw aiohttp client doing the same creates, nothing else."""
    import aiohttp

    batches = [lines[i : i + batch] for i in range(0, len(lines), batch)]
    headers = {"Content-Type": "application/scim+json"}
    connector = aiohttp.TCPConnector(limit=parallel * 8)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def post(endpoint: str, body: dict[str, Any]) -> None:
            async with session.post(url + endpoint, data=json.dumps(body).encode()) as answer:
                await answer.read()

        async def one(lines: list[bytes]) -> None:
            documents = [reference_document(json.loads(line)) for line in lines]
            if bulk:
                operations = [
                    {"method": "POST", "path": "/Users", "bulkId": str(n), "data": d}
                    for n, d in enumerate(documents)
                ]
                await post("/Bulk", {"Operations": operations})
            else:
                await asyncio.gather(*(post("/Users", d) for d in documents))

        queue = iter(batches)

        async def worker() -> None:
            for lines in queue:
                await one(lines)

        await asyncio.gather(*(worker() for _ in range(parallel)))


def timed_reference(path: Path, users: int, bulk: bool, batch: int, parallel: int) -> float:
    target = Target(bulk)
    try:
        started = time.perf_counter()
        lines = path.read_bytes().splitlines()
        asyncio.run(reference_import(target.url, lines, bulk, batch, parallel))
        elapsed = time.perf_counter() - started
        assert target.count() == users, "the reference lost users"
    finally:
        target.stop()
    return users / elapsed


def timed_authswitch(path: Path, users: int, bulk: bool, batch: int, parallel: int) -> float:
    target = Target(bulk)
    options = ["--scim-url", target.url, "--bulk" if bulk else "--no-bulk"]
    return _timed_import(path, users, target, [*options, "--batch-size", str(batch)], parallel)


def timed_authswitch_workos(path: Path, users: int, batch: int, parallel: int) -> float:
    """`authswitch users import --config` whose broker.provisioner is the WorkOS-shaped API."""
    return timed_authswitch_provider(path, users, batch, parallel, "workos")


def timed_authswitch_provider(
    path: Path, users: int, batch: int, parallel: int, kind: str, hashes: bool = False
) -> float:
    """`authswitch users import --config` whose broker.provisioner is the WorkOS- or
    Kratos-shaped API; with `hashes`, every create is checked to have carried its hash."""
    target = Target(bulk=False)
    (path.parent / "workos-key").write_text("bench-key\n")
    config = path.with_name("authswitch.yaml")
    url = f"http://127.0.0.1:{target.port}"
    provisioner: dict[str, str] = {"type": kind, "url": url}
    if kind == "workos":
        provisioner["api_key_file"] = "workos-key"
    else:
        provisioner["schema_id"] = "customer"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "legacy": {"url": "http://127.0.0.1:9"},
                "connection_map": "connections.yaml",
                "flags": {"file": "flags.yaml"},
                "routes": [{"path": "/cb/{connection}", "protocol": "oidc", "identify": ["path"]}],
                "broker": {"provisioner": provisioner},
            }
        )
    )
    options = ["--config", str(config), "--batch-size", str(batch)]
    return _timed_import(path, users, target, options, parallel, hashes=hashes)


def timed_authswitch_okta(path: Path, users: int, batch: int, parallel: int) -> float:
    """`authswitch users import --target okta` against the Okta-shaped Users API, every create
    checked to have carried its hash in `credentials.password.hash`."""
    target = Target(bulk=False)
    token = path.with_name("okta-token")
    token.write_text("bench-okta-token\n")
    options = ["--target", "okta", "--okta-url", f"http://127.0.0.1:{target.port}"]
    options += ["--token-file", str(token), "--batch-size", str(batch)]
    return _timed_import(path, users, target, options, parallel, hashes=True)


def _timed_import(
    path: Path, users: int, target: Target, options: list[str], parallel: int, hashes: bool = False
) -> float:
    """users/s of `authswitch users import` as a process, checked to have lost no user."""
    report = path.with_name("report.json")
    try:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable, "-m", "proxy", "users", "import", str(path), *options,
                "--report-json", str(report), "--parallel", str(parallel),
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        result = json.loads(report.read_text())
        assert result["created"] == users and result["adds_up"], result
        assert target.count() == users, "authswitch lost users"
        assert not hashes or target.count("hashed") == users, "a hash did not pass"
    finally:
        target.stop()
    return users / elapsed


def per_user_costs(path: Path, sample: int) -> dict[str, float]:
    """µs per user: the validation pre-pass, a scim2-models User, the hot loop's dict."""
    from typing import cast

    from scim2_models import Context, Email, Name, User

    from proxy.users_import import UserLine, scan_source, scim_user_document
    from proxy.users_import.line_schema import parse_line

    lines = path.read_bytes().splitlines()[:sample]
    users = [cast(UserLine, parse_line(n, line)) for n, line in enumerate(lines, 1)]
    small = path.with_name("sample.ndjson")
    small.write_bytes(b"\n".join(lines) + b"\n")
    costs: dict[str, float] = {}
    started = time.perf_counter()
    scan_source(small, hash_target=None)
    costs["validation pre-pass (read, JSON, schema, email, duplicates)"] = started
    started = time.perf_counter()
    for user in users:
        User[Any](
            user_name=user.user_name,
            external_id=user.external_id,
            name=Name(given_name=user.given_name, family_name=user.family_name),
            active=True,
            password=user.password.get_secret_value() if user.password else None,
            emails=[Email(value=user.email, primary=True)],
        ).model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    costs["SCIM User with scim2-models (build + dump)"] = started
    started = time.perf_counter()
    for user in users:
        scim_user_document(user)
    costs["SCIM User as a dict (the hot loop)"] = started
    keys = list(costs)
    ends = [*(costs[k] for k in keys[1:]), time.perf_counter()]
    return {k: (end - costs[k]) / len(users) * 1e6 for k, end in zip(keys, ends, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bulk", action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_target(args.serve, bool(args.bulk))
        return

    with tempfile.TemporaryDirectory(prefix="bench-users-") as directory:
        path = Path(directory) / "users.ndjson"
        generate(path, args.users)
        hashed_path = Path(directory) / "hashed" / "users.ndjson"
        hashed_path.parent.mkdir()
        generate_hashed(hashed_path, args.users)
        okta_path = Path(directory) / "okta" / "users.ndjson"
        okta_path.parent.mkdir()
        generate_hashed(okta_path, args.users, okta=True)
        print(
            f"{args.users} generated users, batches of {args.batch_size}, "
            f"{args.parallel} in parallel, {os.cpu_count()} CPUs, {args.rounds} round(s)"
        )
        results: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.rounds):
            for bulk in (True, False):
                for name, run in (("reference", timed_reference), ("authswitch", timed_authswitch)):
                    rate = run(path, args.users, bulk, args.batch_size, args.parallel)
                    results.setdefault((name, bulk), []).append(rate)
            rate = timed_authswitch_workos(path, args.users, args.batch_size, args.parallel)
            results.setdefault(("workos", False), []).append(rate)
            for kind in ("workos", "kratos"):
                rate = timed_authswitch_provider(
                    hashed_path, args.users, args.batch_size, args.parallel, kind, hashes=True
                )
                results.setdefault((kind, True), []).append(rate)
            rate = timed_authswitch_okta(okta_path, args.users, args.batch_size, args.parallel)
            results.setdefault(("okta", True), []).append(rate)
        print()
        print(
            "| transport | reference users/s | authswitch users/s | x reference | x goal (833/s) |"
        )
        print("|---|---:|---:|---:|---:|")
        for bulk in (True, False):
            reference = statistics.median(results[("reference", bulk)])
            ours = statistics.median(results[("authswitch", bulk)])
            print(
                f"| {'/Bulk' if bulk else 'single POSTs'} | {reference:,.0f} | {ours:,.0f} "
                f"| {ours / reference:.2f} | {ours / GOAL_USERS_PER_SECOND:.1f} |"
            )
        workos = statistics.median(results[("workos", False)])
        goal = workos / GOAL_USERS_PER_SECOND
        print(f"| WorkOS API, 16 in flight | | {workos:,.0f} | | {goal:.1f} |")
        for kind, name in (
            ("workos", "WorkOS API"),
            ("kratos", "Kratos admin API"),
            ("okta", "Okta Users API"),
        ):
            rate = statistics.median(results[(kind, True)])
            goal = rate / GOAL_USERS_PER_SECOND
            print(f"| {name}, password hashes, 16 in flight | | {rate:,.0f} | | {goal:.1f} |")
        print()
        print("| per user, in this process | µs |")
        print("|---|---:|")
        for what, micros in per_user_costs(path, min(args.users, 10_000)).items():
            print(f"| {what} | {micros:.1f} |")


if __name__ == "__main__":
    main()
