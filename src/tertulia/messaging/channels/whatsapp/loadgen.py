"""Load generators against a Cloud API endpoint (normally the fake), for benchmarks.

`measure_ceiling` is the bare-async-client ceiling the outbound benchmark prints next to the
full path: a bare aiohttp session posting ready-made text payloads as fast as the server
answers, no database, no rate limiter. `measure_client` does the same through
AsyncCloudAPIClient, to show what our own client costs on top.

    python -m tertulia.messaging.channels.whatsapp.loadgen --base-url http://127.0.0.1:8765
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp

from .client import DEFAULT_API_VERSION, AsyncCloudAPIClient, CloudAPIError, text_payload


@dataclass(frozen=True)
class LoadResult:
    sent: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


async def measure_ceiling(
    base_url: str,
    *,
    token: str,
    phone_number_id: str,
    messages: int = 5000,
    concurrency: int = 64,
    api_version: str = DEFAULT_API_VERSION,
) -> LoadResult:
    """Messages per second a bare aiohttp client gets from the server at `base_url`."""
    url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    counter = iter(range(messages))
    sent = failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent, failed
        for index in counter:
            body = json.dumps(
                text_payload(f"519{index % 100_000_000:08d}", f"ceiling {index}")[0]
            ).encode()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    sent += 1
                else:
                    failed += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return LoadResult(sent, failed, elapsed)


async def measure_client(
    base_url: str,
    *,
    token: str,
    phone_number_id: str,
    messages: int = 5000,
    concurrency: int = 64,
) -> LoadResult:
    """The same load through AsyncCloudAPIClient (payload building, error mapping)."""
    counter = iter(range(messages))
    sent = failed = 0
    async with AsyncCloudAPIClient(
        phone_number_id=phone_number_id,
        access_token=token,
        base_url=base_url,
        max_connections=concurrency,
    ) as client:

        async def worker() -> None:
            nonlocal sent, failed
            for index in counter:
                payload = text_payload(f"519{index % 100_000_000:08d}", f"client {index}")[0]
                try:
                    await client.send(payload)
                    sent += 1
                except CloudAPIError:
                    failed += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return LoadResult(sent, failed, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default="fake-token")
    parser.add_argument("--phone-number-id", default="100000000000001")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    common = {
        "token": args.token,
        "phone_number_id": args.phone_number_id,
        "messages": args.messages,
        "concurrency": args.concurrency,
    }
    ceiling = asyncio.run(measure_ceiling(args.base_url, **common))
    ours = asyncio.run(measure_client(args.base_url, **common))
    print(f"ceiling (bare aiohttp): {ceiling.per_second:.0f} msg/s, {ceiling.failed} failed")
    print(f"AsyncCloudAPIClient:    {ours.per_second:.0f} msg/s, {ours.failed} failed")


if __name__ == "__main__":
    main()
