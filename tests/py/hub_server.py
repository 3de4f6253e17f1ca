"""A small fault-injecting Hugging Face Hub server for the tests (127.0.0.1 only).

It speaks the part of the Hub protocol that huggingface_hub and mlxport use:
  GET  /api/{models|datasets}/{repo}/revision/{rev}          repo info (sha, siblings)
  GET  /api/{models|datasets}/{repo}/tree/{rev}?recursive=true  listing, paged by Link: rel="next"
  HEAD/GET /[datasets/]{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag / X-Linked-Etag,
       X-Linked-Size; LFS files answer 302 to a "CDN" on a second port (another origin)
  GET  /cdn/{sha256}                                           LFS bytes, with Range
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).

Upload side (as huggingface_hub and `mlxport upload` speak it; see docs/upload.md):
  POST /api/repos/create                                  409 when it exists
  POST /api/{type}s/{repo}/preupload/{rev}                uploadMode lfs/regular, oid of the current file
  POST /[datasets/]{repo}.git/info/lfs/objects/batch      basic (PUT to the CDN origin) or multipart
       (part URLs on the CDN, completion on the hub), verify; no actions for stored objects
  POST /api/{type}s/{repo}/commit/{rev}[?create_pr=1]     NDJSON (header, file, lfsFile, deletedFile);
       409 when parentCommit is not the branch head; an lfsFile whose object is not stored is
       refused (422) unless `strict_lfs` is off, then the commit is recorded as broken
  POST /api/{type}s/{repo}/branch/{rev}, POST /api/validate-yaml (model card metadata rules)
Writes need a token in `write_tokens` (401 without one, 403 for a read token). Every commit is
kept (`commits`), so tests can check that no commit ever names a missing LFS object.

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
        self.snapshots = {self.sha: self.files}
        self.lfs_paths = set()  # uploaded through LFS (besides the suffix rule)
        self.lfs_oids = {hashlib.sha256(b).hexdigest() for b in self.files.values()}  # this repo's LFS store
        self.n_prs = 0

    def is_lfs(self, path):
        return path.endswith(LFS_SUFFIXES) or path in self.lfs_paths

    def snapshot(self, sha):
        return self.snapshots.get(sha, self.files)

    def resolve_rev(self, rev):
        if rev in self.refs:
            return self.refs[rev]
        if rev == self.sha or rev in self.snapshots:
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
        # upload side
        self.write_tokens = {"write-token"}
        self.read_tokens = {"good-token", "read-token"}
        self.lfs_threshold = 10 * 1000 * 1000  # preupload: regular files above this go through LFS
        self.multipart_threshold = 8 * 1024 * 1024  # LFS objects above this use the multipart transfer
        self.chunk_size = 4 * 1024 * 1024
        self.strict_lfs = True
        self.lose_commit_answers = 0  # apply that many commits, then drop the connection unanswered
        self.commits = []  # dicts: repo, sha, parent, branch, files, missing_lfs
        self.parts = {}  # upload id -> {part number: bytes}
        self.on_request = None  # callable(handler, method, path) run before routing (kill tests)

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
    def start(self, hub_port=0, cdn_port=0):
        """Ports 0: new ones; a restart after stop() may pass the old ones (same endpoint)."""
        ThreadingHTTPServer.allow_reuse_address = True
        hub = ThreadingHTTPServer(("127.0.0.1", hub_port), _make_handler(self, "hub"))
        cdn = ThreadingHTTPServer(("127.0.0.1", cdn_port), _make_handler(self, "cdn"))
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

        def do_POST(self):
            _upload_route(server, role, self, "POST")

        def do_PUT(self):
            _upload_route(server, role, self, "PUT")

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
                    return self._json(200, {"id": repo_id, "sha": sha, "private": repo.private,
                                            "gated": "auto" if repo.gated else False,
                                            "siblings": [{"rfilename": p} for p in sorted(repo.snapshot(sha))]},
                                  head=head)
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
                files = repo.snapshot(sha)
                if fpath not in files:
                    return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha}, head)
                data = files[fpath]
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
            files = repo.snapshot(sha)
            for p in sorted(files):
                parts = p.split("/")
                for i in range(1, len(parts)):
                    dirs.add("/".join(parts[:i]))
            for d in sorted(dirs):
                entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
            for p in sorted(files):
                b = files[p]
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


# ------------------------------------------------------------------ upload side

GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""

PIPELINE_TAGS = {"feature-extraction", "sentence-similarity", "text-classification", "zero-shot-classification",
                 "token-classification", "fill-mask", "question-answering", "text-generation"}
LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "openrail", "other",
            "gpl-3.0", "llama2", "unknown"}
RELATIONS = {"adapter", "merge", "quantized", "finetune"}
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def validate_card_metadata(content):
    """The Hub's metadata rules for the fields mlxport writes (README.md YAML front matter).
    Returns a list of error messages (empty: valid)."""
    import yaml
    if not content.startswith("---\n"):
        return []  # no metadata: the Hub only warns
    end = content.find("\n---\n", 4)
    if end < 0:
        return ["the YAML front matter is not closed by a '---' line"]
    try:
        meta = yaml.safe_load(content[4:end])
    except yaml.YAMLError as e:
        return ["invalid YAML: %s" % e]
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return ["the metadata is not a mapping"]
    errs = []
    for k in ("library_name", "pipeline_tag", "license", "base_model_relation", "license_name", "license_link"):
        if k in meta and not isinstance(meta[k], str):
            errs.append('"%s" must be a string' % k)
    if isinstance(meta.get("pipeline_tag"), str) and meta["pipeline_tag"] not in PIPELINE_TAGS:
        errs.append('"pipeline_tag" must be a known task, got %r' % meta["pipeline_tag"])
    if isinstance(meta.get("license"), str) and meta["license"] not in LICENSES:
        errs.append('"license" must be a known license id or "other", got %r' % meta["license"])
    if meta.get("license") == "other" and "license_name" not in meta:
        errs.append('"license: other" needs "license_name"')
    if "tags" in meta and not (isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])):
        errs.append('"tags" must be a list of strings')
    if "base_model" in meta:
        bm = meta["base_model"]
        bms = bm if isinstance(bm, list) else [bm]
        if not all(isinstance(b, str) and REPO_ID_RE.match(b) for b in bms):
            errs.append('"base_model" must be a repo id or a list of repo ids, got %r' % (bm,))
    if "base_model_relation" in meta:
        if meta["base_model_relation"] not in RELATIONS:
            errs.append('"base_model_relation" must be one of %s' % sorted(RELATIONS))
        if "base_model" not in meta:
            errs.append('"base_model_relation" needs "base_model"')
    if "model-index" in meta:
        mi = meta["model-index"]
        if not isinstance(mi, list):
            errs.append('"model-index" must be a list')
        else:
            for m in mi:
                if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not isinstance(m.get("results"), list):
                    errs.append('"model-index" entries need "name" (string) and "results" (list)')
                    continue
                for r in m["results"]:
                    ok = (isinstance(r, dict) and isinstance(r.get("task"), dict)
                          and isinstance(r["task"].get("type"), str) and isinstance(r.get("dataset"), dict)
                          and isinstance(r["dataset"].get("name"), str) and isinstance(r["dataset"].get("type"), str)
                          and isinstance(r.get("metrics"), list) and r["metrics"])
                    if not ok:
                        errs.append('"model-index" results need task.type, dataset.name, dataset.type and metrics')
                        continue
                    for mt in r["metrics"]:
                        if not (isinstance(mt, dict) and isinstance(mt.get("type"), str) and "value" in mt
                                and isinstance(mt["value"], (int, float, str)) and not isinstance(mt["value"], bool)):
                            errs.append('"model-index" metrics need "type" (string) and "value" (number)')
    return errs


def _read_body(h, limit=1 << 31):
    n = int(h.headers.get("Content-Length") or 0)
    if n < 0 or n > limit:
        raise ValueError("bad length")
    return h.rfile.read(n) if n else b""


def _drop(h, after, total):
    """Reads `after` bytes of the request body, then drops the connection (a failed upload)."""
    try:
        h.rfile.read(min(after, total))
    except OSError:
        pass
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _new_sha(repo, parent, files):
    return hashlib.sha1(("%s %s %d %f" % (parent, sorted((p, hashlib.sha256(b).hexdigest()) for p, b in files.items()),
                                          len(server_commit_counter), time.time())).encode()).hexdigest()


server_commit_counter = []


def _upload_route(server, role, h, method):
    with server.lock:
        server.log.append((role, method, h.path, h.headers.get("Authorization"), h.headers.get("Range")))
    if server.on_request:
        server.on_request(h, method, h.path)
    f = server.take_fault(method, h.path)
    url = urllib.parse.urlsplit(h.path)
    path, query = url.path, urllib.parse.parse_qs(url.query)
    total = int(h.headers.get("Content-Length") or 0)
    if f is not None and f.kind == "drop":
        return _drop(h, f.kw.get("after", total // 2), total)
    if f is not None and f.kind == "die":  # the server goes away: both ports closed, then no answer
        server.stop()  # from a handler thread: serve_forever runs in another one
        _drop(h, 0, total)
        return
    try:
        body = _read_body(h)
    except (ValueError, OSError):
        h.close_connection = True
        return
    if f is not None and f.kind == "slow":
        time.sleep(f.kw.get("seconds", 5))
    if f is not None and f.kind == "status":
        hs = {"Retry-After": str(f.kw["retry_after"])} if "retry_after" in f.kw else {}
        code = f.kw.get("code", 500)
        return h._error(code, f.kw.get("error_code", "Injected"), f.kw.get("message", "injected %d" % code), hs)
    if role == "cdn":
        return _cdn_put(server, h, method, path, body)
    auth = h.headers.get("Authorization") or ""
    token = auth[7:] if auth.startswith("Bearer ") else None

    def need_write(repo_id):
        if token is None or (token not in server.write_tokens and token not in server.read_tokens):
            h._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False
        if token not in server.write_tokens:
            h._error(403, "Forbidden", "You don't have the rights to write to %s: this is a read token" % repo_id)
            return False
        return True

    if method == "POST" and path == "/api/validate-yaml":
        try:
            content = json.loads(body)["content"]
        except (ValueError, KeyError, TypeError):
            return h._error(400, "BadRequest", "expected {content, repoType}")
        errs = validate_card_metadata(content)
        if errs:
            return h._json(400, {"error": "; ".join(errs), "errors": [{"message": e} for e in errs]})
        return h._json(200, {"errors": [], "warnings": []})
    if method == "POST" and path == "/api/repos/create":
        try:
            req = json.loads(body)
            name, org = req["name"], req.get("organization")
        except (ValueError, KeyError, TypeError):
            return h._error(400, "BadRequest", "expected {name, organization}")
        rtype = req.get("type") or "model"
        repo_id = "%s/%s" % (org, name) if org else name
        if not need_write(repo_id):
            return
        if (rtype, repo_id) in server.repos:
            return h._json(409, {"error": "You already created this %s repo" % rtype,
                                 "url": "%s/%s" % (server.endpoint, repo_id)})
        r = Repo(repo_id, {".gitattributes": GITATTRIBUTES}, repo_type=rtype, token=token,
                 private=bool(req.get("private")))
        server.add_repo(r)
        return h._json(200, {"url": "%s/%s%s" % (server.endpoint, "" if rtype == "model" else rtype + "s/", repo_id),
                             "name": repo_id})
    m = re.match(r"^/(datasets/)?([^/]+(?:/[^/]+)?)\.git/info/lfs/objects/(batch|verify)$", path)
    if m and method == "POST":
        rtype, repo_id = ("dataset" if m.group(1) else "model"), m.group(2)
        repo = server.repos.get((rtype, repo_id))
        if repo is None:
            return h._error(404, "RepoNotFound", "Repository not found")
        if not need_write(repo_id):
            return
        try:
            req = json.loads(body)
        except ValueError:
            return h._error(400, "BadRequest", "bad JSON")
        if m.group(3) == "verify":
            oid, size = req.get("oid"), req.get("size")
            if oid not in repo.lfs_oids or len(server.blobs[oid]) != size:
                return h._error(404, "ObjectNotFound", "LFS object %s not found" % oid)
            return h._json(200, {"success": True})
        return _lfs_batch(server, h, repo, req)
    m = re.match(r"^/api/complete_multipart$", path)
    if m and method == "POST":
        try:
            req = json.loads(body)
            uid = query["uploadId"][0]
            oid = req["oid"]
            etags = [(p["partNumber"], p["etag"]) for p in req["parts"]]
        except (ValueError, KeyError, TypeError, IndexError):
            return h._error(400, "BadRequest", "bad completion request")
        parts = dict(server.parts.get(uid, {}))
        repo = parts.pop("repo", None)
        if repo is None:
            return h._error(404, "NotFound", "no such multipart upload")
        if [n for n, _ in etags] != list(range(1, len(etags) + 1)) or set(parts) != {n for n, _ in etags}:
            return h._error(400, "BadRequest", "parts missing or out of order")
        for n, e in etags:
            if hashlib.md5(parts[n]).hexdigest() != e.strip('"'):
                return h._error(400, "BadRequest", "part %d: etag mismatch" % n)
        data = b"".join(parts[n] for n, _ in etags)
        if hashlib.sha256(data).hexdigest() != oid:
            return h._error(400, "BadRequest", "assembled object does not match its oid")
        server.blobs[oid] = data
        repo.lfs_oids.add(oid)
        server.parts.pop(uid, None)
        return h._json(200, {"success": True})
    m = re.match(r"^/api/(models|datasets)/([^/]+(?:/[^/]+)?)/(preupload|commit|branch)/(.+)$", path)
    if m and method == "POST":
        rtype, repo_id, what, rev = m.group(1)[:-1], m.group(2), m.group(3), urllib.parse.unquote(m.group(4))
        repo = server.repos.get((rtype, repo_id))
        if repo is None:
            return h._error(404, "RepoNotFound", "Repository Not Found for url: %s." % h.path)
        if not need_write(repo_id):
            return
        create_pr = query.get("create_pr") == ["1"]
        if what == "branch":
            if rev in repo.refs:
                return h._json(409, {"error": "Reference already exists"})
            repo.refs[rev] = repo.refs["main"]
            return h._json(200, {})
        head = repo.refs.get(rev)
        if head is None and not create_pr:
            return h._error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        if what == "preupload":
            return _preupload(server, h, repo, head, body)
        return _commit(server, h, repo, rev, head, body, create_pr)
    h._send(404, b"not found")


def _cdn_put(server, h, method, path, body):
    m = re.match(r"^/upload/(model|dataset)/(.+)/([0-9a-f]{64})$", path)
    if m and method == "PUT":
        repo = server.repos.get((m.group(1), m.group(2)))
        if repo is None:
            return h._send(404, b"no such repo")
        if hashlib.sha256(body).hexdigest() != m.group(3):
            return h._send(400, b"content does not match the oid")
        server.blobs[m.group(3)] = body
        repo.lfs_oids.add(m.group(3))
        return h._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
    m = re.match(r"^/part/([0-9a-f]+)/(\d+)$", path)
    if m and method == "PUT":
        if m.group(1) not in server.parts:
            return h._send(404, b"no such multipart upload")
        server.parts[m.group(1)][int(m.group(2))] = body
        return h._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
    h._send(404, b"no such upload")


def _lfs_batch(server, h, repo, req):
    if req.get("operation") != "upload" or not isinstance(req.get("objects"), list):
        return h._error(400, "BadRequest", "expected an upload batch")
    transfers = req.get("transfers") or ["basic"]
    out = []
    multipart_used = False
    for o in req["objects"]:
        oid, size = o.get("oid"), o.get("size")
        if not (isinstance(oid, str) and re.match(r"^[0-9a-f]{64}$", oid) and isinstance(size, int)):
            return h._error(422, "BadRequest", "bad object")
        if oid in repo.lfs_oids and len(server.blobs[oid]) == size:
            out.append({"oid": oid, "size": size})
            continue
        verify = {"href": "%s/%s%s.git/info/lfs/objects/verify" % (server.endpoint,
                                                                  "datasets/" if repo.repo_type == "dataset" else "",
                                                                  repo.repo_id), "header": {}}
        if size > server.multipart_threshold and "multipart" in transfers:
            multipart_used = True
            uid = hashlib.sha1(("%s%f" % (oid, time.time())).encode()).hexdigest()
            n = (size + server.chunk_size - 1) // server.chunk_size
            header = {"chunk_size": str(server.chunk_size)}
            for i in range(1, n + 1):
                header["%05d" % i] = "%s/part/%s/%d?sig=test" % (server.cdn, uid, i)
            server.parts[uid] = {"repo": repo}
            up = {"href": "%s/api/complete_multipart?uploadId=%s" % (server.endpoint, uid), "header": header}
        else:
            up = {"href": "%s/upload/%s/%s/%s?sig=test" % (server.cdn, repo.repo_type, repo.repo_id, oid), "header": {}}
        out.append({"oid": oid, "size": size, "authenticated": True, "actions": {"upload": up, "verify": verify}})
    h._json(200, {"transfer": "multipart" if multipart_used else "basic", "objects": out, "hash_algo": "sha256"},
            {"Content-Type": "application/vnd.git-lfs+json"})


def _preupload(server, h, repo, head, body):
    try:
        req = json.loads(body)
        files = req["files"]
    except (ValueError, KeyError, TypeError):
        return h._error(400, "BadRequest", "expected {files: [...]}")
    current = repo.snapshot(head) if head else {}
    out = []
    for f in files:
        p, size = f["path"], f["size"]
        lfs = p.endswith(LFS_SUFFIXES) or size > server.lfs_threshold
        e = {"path": p, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
        if p in current:
            e["oid"] = hashlib.sha256(current[p]).hexdigest() if repo.is_lfs(p) or lfs else git_oid(current[p])
        out.append(e)
    h._json(200, {"files": out, "commitOid": head})


def _commit(server, h, repo, rev, head, body, create_pr):
    try:
        lines = [json.loads(x) for x in body.split(b"\n") if x.strip()]
    except ValueError:
        return h._error(400, "BadRequest", "the body is not NDJSON")
    if not lines or lines[0].get("key") != "header" or not isinstance(lines[0].get("value"), dict):
        return h._error(400, "BadRequest", "the first line must be the header")
    hdr = lines[0]["value"]
    parent = hdr.get("parentCommit")
    if parent is not None and not create_pr and parent != head:
        return h._error(409, "Conflict", "A commit has happened since: %s is not the head of %s (%s)"
                        % (parent, rev, head))
    base = parent if (create_pr and parent) else head
    files = dict(repo.snapshot(base))
    lfs_paths, missing = set(), []
    for ln in lines[1:]:
        k, v = ln.get("key"), ln.get("value") or {}
        p = v.get("path")
        if not isinstance(p, str) or p.startswith("/") or ".." in p.split("/"):
            return h._error(400, "BadRequest", "bad path %r" % (p,))
        if k == "file":
            if v.get("encoding") != "base64":
                return h._error(400, "BadRequest", "only base64 file contents")
            import base64
            files[p] = base64.b64decode(v["content"])
        elif k == "lfsFile":
            oid = v.get("oid")
            if oid not in repo.lfs_oids:
                if server.strict_lfs:
                    return h._error(422, "BadRequest", "Your push was rejected because an LFS pointer pointed to a "
                                    "file that does not exist (%s, oid %s)" % (p, oid))
                missing.append(p)
                files[p] = b""
            else:
                files[p] = server.blobs[oid]
            lfs_paths.add(p)
        elif k == "deletedFile":
            files.pop(p, None)
        else:
            return h._error(400, "BadRequest", "unknown key %r" % k)
    server_commit_counter.append(1)
    sha = _new_sha(repo, base, files)
    repo.snapshots[sha] = files
    repo.lfs_paths |= lfs_paths
    branch = rev
    res = {"commitOid": sha, "commitUrl": "%s/%s/commit/%s" % (server.endpoint, repo.repo_id, sha)}
    if create_pr:
        repo.n_prs += 1
        branch = "refs/pr/%d" % repo.n_prs
        res["pullRequestUrl"] = "%s/%s/discussions/%d" % (server.endpoint, repo.repo_id, repo.n_prs)
    else:
        res["pullRequestUrl"] = None
    repo.refs[branch] = sha
    if branch == "main":
        repo.files, repo.sha = files, sha
    server.commits.append({"repo": repo.repo_id, "sha": sha, "parent": base, "branch": branch,
                           "files": dict(files), "missing_lfs": missing, "summary": hdr.get("summary")})
    if server.lose_commit_answers > 0:  # committed, but the client never hears of it
        server.lose_commit_answers -= 1
        return _drop(h, 0, 0)
    h._json(200, res)


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
