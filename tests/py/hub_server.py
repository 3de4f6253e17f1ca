"""A small fault-injecting Hugging Face Hub server for the tests (127.0.0.1 only).

It speaks the part of the Hub protocol that huggingface_hub and mlxport use:
  GET  /api/{models|datasets}/{repo}/revision/{rev}          repo info (sha, siblings)
  GET  /api/{models|datasets}/{repo}/tree/{rev}?recursive=true  listing, paged by Link: rel="next"
  HEAD/GET /[datasets/]{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag / X-Linked-Etag,
       X-Linked-Size; LFS files answer 302 to a "CDN" on a second port (another origin)
  GET  /cdn/{sha256}                                           LFS bytes, with Range
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).

Faults are rules (see Fault) consumed by matching requests: HTTP status answers (500, 429 with
Retry-After), a connection dropped mid-body, a short body, corrupt bytes, a wrong announced size,
a slow answer, a throttled body. Every request is logged (server, method, path, Authorization,
Range).
"""
import hashlib
import json
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".parquet", ".onnx", ".msgpack", ".h5")


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_id, files, repo_type="model", gated=False, token="good-token", branch="main",
                 private=False):
        self.repo_id, self.repo_type, self.gated, self.token = repo_id, repo_type, gated, token
        self.private = private  # without the token: 401 RepoNotFound, as the Hub hides private repos
        self.files = dict(files)  # path -> bytes
        self.sha = hashlib.sha1(repr(sorted((p, hashlib.sha256(b).hexdigest()) for p, b in self.files.items()))
                                .encode()).hexdigest()
        self.refs = {branch: self.sha}
        self.extra_tree = []  # raw entries appended to the listing (bad-input tests)

    def is_lfs(self, path):
        return path.endswith(LFS_SUFFIXES)

    def resolve_rev(self, rev):
        if rev in self.refs:
            return self.refs[rev]
        if rev == self.sha:
            return rev
        return None


class Fault:
    """kind: status (code, retry_after), drop (after bytes), short (after bytes), corrupt,
    size_plus (HEAD announces `extra` more bytes), slow (seconds before answering),
    throttle (chunk bytes, delay seconds between chunks). `where`: substring of the request path;
    `method`: GET/HEAD/None; `count`: how many requests it applies to (None = all)."""

    def __init__(self, kind, where="", method=None, count=1, **kw):
        self.kind, self.where, self.method, self.count, self.kw = kind, where, method, count, kw
        self.hits = 0


class HubServer:
    def __init__(self, page_size=3):
        self.page_size = page_size
        self.repos = {}
        self.blobs = {}
        self.faults = []
        self.log = []
        self.lock = threading.Lock()
        self.ignore_range = False  # answer 200 (whole file) to Range requests
        self.renamed = {}  # old repo id -> new repo id: answered with relative 307 redirects, as the Hub does
        self._servers = []

    # ---- set-up
    def add_repo(self, repo):
        self.repos[(repo.repo_type, repo.repo_id)] = repo
        for b in repo.files.values():
            self.blobs[hashlib.sha256(b).hexdigest()] = b
        return repo

    def add_fault(self, *a, **kw):
        f = Fault(*a, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def clear(self):
        with self.lock:
            self.faults.clear()
            self.log.clear()

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f.count is not None and f.count <= 0:
                    continue
                if f.method and f.method != method:
                    continue
                if f.where not in path:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.hits += 1
                return f
        return None

    def requests(self, method=None, where=""):
        with self.lock:
            return [r for r in self.log if (method is None or r[1] == method) and where in r[2]]

    # ---- life cycle
    def start(self):
        hub = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, "hub"))
        cdn = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, "cdn"))
        hub.daemon_threads = cdn.daemon_threads = True
        self._servers = [hub, cdn]
        self.endpoint = "http://127.0.0.1:%d" % hub.server_address[1]
        self.cdn = "http://127.0.0.1:%d" % cdn.server_address[1]
        for s in self._servers:
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []


def _make_handler(server, role):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        # ---- helpers
        def _send(self, code, body=b"", headers=None, head=False):
            self.send_response(code)
            hs = dict(headers or {})
            hs.setdefault("Content-Length", str(len(body)))
            for k, v in hs.items():
                self.send_header(k, v)
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _json(self, code, obj, headers=None, head=False):
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            self._send(code, json.dumps(obj).encode(), h, head)

        def _error(self, code, err_code, msg, headers=None, head=False):
            h = {"X-Error-Code": err_code, "X-Error-Message": msg}
            h.update(headers or {})
            self._json(code, {"error": msg}, h, head)

        def _authorized(self, repo):
            return self.headers.get("Authorization") == "Bearer " + repo.token

        def _repo(self, rtype, repo_id, head=False):
            repo = server.repos.get((rtype, repo_id))
            if repo is None:
                self._error(404, "RepoNotFound", "Repository Not Found for url: %s." % self.path, head=head)
                return None
            if repo.private and not self._authorized(repo):
                self._error(401, "RepoNotFound", "Repository Not Found for url: %s." % self.path, head=head)
                return None
            if repo.gated and not self._authorized(repo):
                self._error(401, "GatedRepo", "Access to %s %s is restricted. You must have access to it and be "
                            "authenticated to access it." % (rtype, repo_id), head=head)
                return None
            return repo

        def _body(self, data, code=200, headers=None, head=False, fault=None):
            """Sends a file body honouring Range and the body faults."""
            hs = dict(headers or {})
            start = 0
            rng = self.headers.get("Range")
            if rng and not server.ignore_range:
                m = re.match(r"bytes=(\d+)-$", rng)
                start = int(m.group(1)) if m else 0
                if start >= len(data) and len(data) > 0:
                    return self._send(416, b"", {"Content-Range": "bytes */%d" % len(data)}, head)
                if start:
                    code = 206
                    hs["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
            part = data[start:]
            kind = fault.kind if fault else None
            if kind == "corrupt" and part:
                part = bytes([part[0] ^ 0xFF]) + part[1:]
            if kind == "short":
                part = part[: fault.kw.get("after", len(part) // 2)]
            hs["Content-Length"] = str(len(part))
            self.send_response(code)
            for k, v in hs.items():
                self.send_header(k, v)
            self.end_headers()
            if head:
                return
            if kind == "drop":
                n = fault.kw.get("after", len(part) // 2)
                self.wfile.write(part[:n])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if kind == "throttle":
                chunk, delay = fault.kw.get("chunk", 65536), fault.kw.get("delay", 0.05)
                try:
                    for i in range(0, len(part), chunk):
                        self.wfile.write(part[i:i + chunk])
                        self.wfile.flush()
                        time.sleep(delay)
                except OSError:
                    self.close_connection = True
                return
            try:
                self.wfile.write(part)
            except OSError:
                self.close_connection = True

        def _pre(self, method):
            """Logs the request and applies status/slow faults; returns (handled, body_fault)."""
            with server.lock:
                server.log.append((role, method, self.path, self.headers.get("Authorization"),
                                   self.headers.get("Range")))
            f = server.take_fault(method, self.path)
            if f is None:
                return False, None
            if f.kind == "slow":
                time.sleep(f.kw.get("seconds", 5))
                return False, None
            if f.kind == "status":
                h = {}
                if "retry_after" in f.kw:
                    h["Retry-After"] = str(f.kw["retry_after"])
                self._json(f.kw.get("code", 500), {"error": "injected"}, h, head=method == "HEAD")
                return True, None
            return False, f

        # ---- routes
        def do_HEAD(self):
            self._route("HEAD")

        def do_GET(self):
            self._route("GET")

        def _route(self, method):
            handled, fault = self._pre(method)
            if handled:
                return
            head = method == "HEAD"
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            if role == "cdn":
                m = re.match(r"^/cdn/([0-9a-f]{64})$", path)
                if not m or m.group(1) not in server.blobs:
                    return self._send(404, b"no such object", head=head)
                return self._body(server.blobs[m.group(1)], head=head, fault=fault)
            for old, new in server.renamed.items():
                for prefix in ("/api/models/", "/api/datasets/", "/", "/datasets/"):
                    if path.startswith(prefix + old + "/"):
                        loc = prefix + new + path[len(prefix + old):] + ("?" + url.query if url.query else "")
                        return self._send(307, b"", {"Location": loc}, head)
            m = re.match(r"^/api/(models|datasets)/([^/]+(?:/[^/]+)?)/(revision|tree)/([^/]+)$", path)
            if m:
                rtype, repo_id, what, rev = m.group(1)[:-1], m.group(2), m.group(3), urllib.parse.unquote(m.group(4))
                repo = self._repo(rtype, repo_id, head)
                if repo is None:
                    return
                sha = repo.resolve_rev(rev)
                if sha is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
                if what == "revision":
                    return self._json(200, {"id": repo_id, "sha": sha, "private": False,
                                            "gated": "auto" if repo.gated else False,
                                            "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, head=head)
                return self._tree(repo, sha, url.query, head)
            m = re.match(r"^/(datasets/)?([^/]+(?:/[^/]+)?)/resolve/([^/]+)/(.+)$", path)
            if m:
                rtype = "dataset" if m.group(1) else "model"
                repo_id, rev, fpath = m.group(2), urllib.parse.unquote(m.group(3)), urllib.parse.unquote(m.group(4))
                repo = self._repo(rtype, repo_id, head)
                if repo is None:
                    return
                sha = repo.resolve_rev(rev)
                if sha is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
                if fpath not in repo.files:
                    return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha}, head)
                data = repo.files[fpath]
                h = {"X-Repo-Commit": sha}
                size = len(data)
                if fault is not None and fault.kind == "size_plus":
                    size += fault.kw.get("extra", 10)
                if repo.is_lfs(fpath):
                    digest = hashlib.sha256(data).hexdigest()
                    h.update({"X-Linked-Etag": '"%s"' % digest, "X-Linked-Size": str(size),
                              "ETag": '"%s"' % git_oid(data),
                              "Location": "%s/cdn/%s?sig=test" % (server.cdn, digest)})
                    return self._send(302, b"", h, head)
                h["ETag"] = '"%s"' % git_oid(data)
                if head:
                    h["Content-Length"] = str(size)
                    return self._send(200, b"", h, head=True)
                return self._body(data, headers=h, fault=fault)
            self._send(404, b"not found", head=head)

        def _tree(self, repo, sha, query, head):
            q = urllib.parse.parse_qs(query)
            entries = []
            dirs = set()
            for p in sorted(repo.files):
                parts = p.split("/")
                for i in range(1, len(parts)):
                    dirs.add("/".join(parts[:i]))
            for d in sorted(dirs):
                entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
            for p in sorted(repo.files):
                b = repo.files[p]
                e = {"type": "file", "oid": git_oid(b), "size": len(b), "path": p}
                if repo.is_lfs(p):
                    e["lfs"] = {"oid": hashlib.sha256(b).hexdigest(), "size": len(b), "pointerSize": 134}
                entries.append(e)
            entries += repo.extra_tree
            cursor = int(q.get("cursor", ["0"])[0])
            page = entries[cursor:cursor + server.page_size]
            h = {}
            if cursor + server.page_size < len(entries):
                nq = {"recursive": "true", "cursor": str(cursor + server.page_size)}
                h["Link"] = '<%s%s?%s>; rel="next"' % (server.endpoint, self.path.split("?")[0],
                                                      urllib.parse.urlencode(nq))
            self._json(200, page, h, head)

    return Handler


if __name__ == "__main__":  # manual use / benchmarks: serve a directory as a model repo (default "local/model")
    import os
    import sys
    root = sys.argv[1]
    repo_id = sys.argv[2] if len(sys.argv) > 2 else "local/model"
    files = {}
    for dp, _, fns in os.walk(root):
        for fn in fns:
            full = os.path.join(dp, fn)
            files[os.path.relpath(full, root)] = open(full, "rb").read()
    s = HubServer(page_size=50).start()
    r = s.add_repo(Repo(repo_id, files))
    del files
    print("HF_ENDPOINT=" + s.endpoint, r.sha, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()
