"""Chat completion through the deployed OpenAI facade with the OpenAI SDK (used by smoke.sh).

python3 openai_smoke.py --base-url http://127.0.0.1:31080/openai/v1 --host qwen.kcr-demo.example.com
"""

from __future__ import annotations

import argparse
import sys
import time

from openai import OpenAI


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--host", help="Host header for the Istio gateway (the ISVC's status.url host)")
    parser.add_argument("--model", default="qwen2.5:0.5b")
    parser.add_argument("--api-key", default="unused")
    args = parser.parse_args()
    headers = {"Host": args.host} if args.host else None
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, default_headers=headers, timeout=300)
    start = time.monotonic()
    reply = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "In one sentence: what is KServe?"}],
        max_tokens=64,
    )
    text = (reply.choices[0].message.content or "").strip()
    print(f"ok   chat completion in {time.monotonic() - start:.1f} s: {text!r} ({reply.usage})")
    return 0 if text else 1


if __name__ == "__main__":
    sys.exit(main())
