"""One GET with a Python HTTP client, as a script sending clicks would: the library's own headers,
a browser's User-Agent, no redirect followed. Prints the status.

    python get.py requests|httpx URL USER_AGENT
    python get.py curl_cffi URL TARGET     (impersonates TARGET: chrome, safari, firefox)

Exits 3 when the library is not installed (curl_cffi is optional, see scripts/setup-clients.sh).
"""
import sys

tool, url, arg = sys.argv[1:4]
try:
    if tool == "requests":
        import requests

        status = requests.get(url, headers={"User-Agent": arg}, allow_redirects=False).status_code
    elif tool == "httpx":
        import httpx

        status = httpx.get(url, headers={"User-Agent": arg}, follow_redirects=False).status_code
    elif tool == "curl_cffi":
        from curl_cffi import requests as impersonating

        # The impersonated browser's own User-Agent and headers, as the tool is used.
        status = impersonating.get(url, impersonate=arg, allow_redirects=False).status_code
    else:
        sys.exit(f"unknown client {tool}")
except ImportError as e:
    print(f"not installed: {e}")
    sys.exit(3)
print(status)
