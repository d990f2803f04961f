"""What an Idempotency-Key costs on an admin write, in-process through the aiohttp test server with
auth on (SQLite in a temporary data directory, or PostgreSQL with --database-url), sequential:

  plain      POST /admin/users without the header
  keyed      POST /admin/users with a fresh key (claim + the write + the stored, sealed answer)
  replayed   the same POST and key again (one read and an unseal; the handler does not run)

    python bench/idempotency.py [--n 300] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/db]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR
from inferlab.config import Settings


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(n: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=database_url, features={"auth": True},
                            auth={"pepper": "bench-idempotency-pepper-0123", "bootstrap": False},
                            models=[{"name": "m", "backend": "openai", "url": "http://127.0.0.1:9/v1"}])
        app = await create_app(settings)
        async with TestClient(TestServer(app)) as client:
            stack = app[SERVICES].auth
            assert stack is not None
            admin = await stack.admin.create_user(LOCAL_OPERATOR, "bench-admin", "platform-admin", "default")
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="bench", user_id=admin.id, scopes=ALL_SCOPES)
            auth = {"Authorization": f"Bearer {created.token}"}
            run_id = uuid.uuid4().hex[:6]

            async def timed(label: str, headers: dict[str, str], body: dict[str, Any]) -> float:
                started = time.perf_counter()
                response = await client.post("/admin/users", json=body, headers=headers)
                await response.read()
                assert response.status == 201, (label, response.status)
                return (time.perf_counter() - started) * 1000

            results: dict[str, list[float]] = {"plain": [], "keyed": [], "replayed": []}
            for i in range(n):  # interleaved: drift hits all three alike
                results["plain"].append(await timed("plain", auth, {"name": f"p-{run_id}-{i}"}))
                keyed = {**auth, "Idempotency-Key": f"bench-{run_id}-{i}"}
                body = {"name": f"k-{run_id}-{i}"}
                results["keyed"].append(await timed("keyed", keyed, body))
                results["replayed"].append(await timed("replayed", keyed, body))
    store = "PostgreSQL" if database_url else "SQLite"
    print(f"{store}, n={n} each, sequential, ms:")
    for label, samples in results.items():
        print(f"  {label:9} p50 {statistics.median(samples):6.2f}  p95 {pct(samples, 0.95):6.2f}  "
              f"mean {statistics.fmean(samples):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.database_url))


if __name__ == "__main__":
    main()
