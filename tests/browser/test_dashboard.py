#!/usr/bin/env python3
"""test_dashboard.py -- the dashboard in a real browser.

Debian's chromium, headless, driven through chromedriver with the W3C
WebDriver HTTP protocol (urllib only, no selenium), against a real
`drover web` and a private redis-server. Checks what a person sees and
does: the queue table's numbers, retry of a dead letter (checked in
Redis), hostile job fields shown as text and never run, a POST without
the CSRF token refused with nothing changed, job lookup, pause/resume,
graph pipeline runs that a real droverd ran drawn as SVG with each
node's state (and followed while one runs), and that the page breaks
its own Content-Security-Policy nowhere.

Prints cmocka-style lines ("[  PASSED  ] N test(s).") so
tests/run-tests.sh counts the results. Environment:
  DROVER_BIN_DIR     where bin/drover is (default bin)
  DROVER_SCREENSHOT  where to save a PNG of the dashboard (default: none);
                     the graph view goes next to it, NAME-graph.png
  DROVER_TEST_KEEP=1 keep the temp dir (logs)
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
WAIT_S = 30.0           # watchdog for every wait (never a speed check)

XSS_SCRIPT = "<script>window.__drover_pwned = 1</script>"
XSS_IMG = "<img src=x onerror=\"window.__drover_pwned = 2\">"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, fn, timeout=WAIT_S):
    """Poll fn until it returns a true value; fail naming what."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the page may be mid-render
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# ------------------------------------------------------------------ Redis

class Redis:
    """A minimal RESP2 client: enough to seed and check."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()


def start_redis(tmp):
    port = free_port()
    conf = os.path.join(tmp, "redis.conf")
    with open(conf, "w") as f:
        f.write("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
                "dir %s\nlogfile %s\n" % (port, tmp,
                                            os.path.join(tmp, "redis.log")))
    proc = subprocess.Popen(["redis-server", conf])
    r = wait_for("redis-server", lambda: _try_redis(port))
    return proc, port, r


def _try_redis(port):
    try:
        r = Redis(port)
        return r if r("PING") == "PONG" else None
    except OSError:
        return None


# ------------------------------------------------------------ WebDriver

class Browser:
    def __init__(self, port, tmp):
        self.base = "http://127.0.0.1:%d" % port
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--window-size=1400,1700",
                         "--force-device-scale-factor=1",
                         "--user-data-dir=" + os.path.join(tmp, "chrome")],
            }}}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp)["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError("webdriver %s %s: %s" %
                                 (method, path, e.read()[:500])) from None

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.sid, path), body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def find_all(self, css):
        found = self.s("POST", "/elements",
                       {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def find(self, css):
        els = self.find_all(css)
        if not els:
            raise AssertionError("no element matches %s" % css)
        return els[0]

    def text(self, css):
        return self.s("GET", "/element/%s/text" % self.find(css))

    def click(self, css):
        self.s("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css, text):
        self.s("POST", "/element/%s/value" % self.find(css), {"text": text})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync",
                      {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.s("POST", "/execute/async",
                      {"script": script, "args": list(args)})

    def log(self):
        return self.s("POST", "/se/log", {"type": "browser"})

    def screenshot(self, path):
        png = base64.b64decode(self.s("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass


def start_chromedriver(tmp):
    port = free_port()
    proc = subprocess.Popen(
        ["chromedriver", "--port=%d" % port,
         "--log-path=" + os.path.join(tmp, "chromedriver.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/status" % port,
                                        timeout=2) as r:
                return json.load(r)["value"]["ready"]
        except OSError:
            return False
    wait_for("chromedriver", ready)
    return proc, port


# graph pipelines for droverd (queue graphs) to run: a diamond with a
# fan-out and a compensation node, one whose middle node dies with markup
# in its error, one whose fan-out items hold until a file exists
GRAPH_CONFIG = """\
  fetch: {handler: exec, command: [printf, '[1,2,3]']}
  thumb: {handler: exec, command: [sh, -c, 'printf "t%%s" "$1"', sh, '{item}']}
  probe: {handler: exec, command: [printf, ok]}
  report: {handler: exec, command: [printf, done]}
  cleanup: {handler: exec, command: [printf, cleaned]}
  broken: {handler: exec, command: [sh, -c, 'echo "%(xss)s" >&2; exit 3']}
  hold: {handler: exec, command: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.05; done', '%(release)s']}
pipelines:
  publish:
    retries: 0
    graph:
      fetch: {job: fetch}
      thumbs: {job: thumb, needs: fetch, for_each: "{input}", max_parallel: 2}
      probe: {job: probe, needs: fetch}
      report: {job: report, needs: [thumbs, probe]}
      undo: {job: cleanup, on_failure: true}
  fragile:
    retries: 0
    graph:
      fetch: {job: fetch}
      convert: {job: broken, needs: fetch}
      report: {job: report, needs: convert}
      undo: {job: cleanup, on_failure: true}
  slow:
    graph:
      fetch: {job: fetch}
      thumbs: {job: hold, needs: fetch, for_each: "{input}", max_parallel: 2}
      probe: {job: probe, needs: fetch}
      report: {job: report, needs: [thumbs, probe]}
      undo: {job: cleanup, on_failure: true}
"""


def start_web(tmp, redis_port):
    conf = os.path.join(tmp, "drover.yaml")
    with open(conf, "w") as f:
        f.write("redis:\n  url: redis://127.0.0.1:%d/0\n"
                "queues: [default, emails, reports, graphs]\n"
                "jobs:\n  resize: {handler: noop}\n"
                "  send-mail: {handler: noop}\n" % redis_port)
        f.write(GRAPH_CONFIG % {"xss": XSS_IMG.replace('"', '\\"'),
                                "release": os.path.join(tmp, "release")})
    binary = os.path.join(os.environ.get("DROVER_BIN_DIR", "bin"), "drover")
    log = open(os.path.join(tmp, "web.log"), "w")
    proc = subprocess.Popen([binary, "-c", conf, "web", "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    line = proc.stdout.readline()
    if "dashboard at " not in line:
        raise AssertionError("drover web did not start: %r" % line)
    url = line.split("dashboard at ", 1)[1].split()[0]
    return proc, url


# ---------------------------------------------------------------- seed

def seed(r):
    r("FLUSHALL")
    now = int(time.time() * 1000)
    jobs = "drover:{default}:jobs"
    for i in range(7):
        r("XADD", jobs, "*", "job", "resize", "id", "img-%d" % i,
          "path", "/srv/img/%d.png" % i, "width", "640")
    r("XGROUP", "CREATE", jobs, "drover", "0", "MKSTREAM")
    r("XREADGROUP", "GROUP", "drover", "w1", "COUNT", "2", "STREAMS", jobs,
      ">")
    for i in range(3):
        r("ZADD", "drover:{default}:delayed", now + 60000 * (i + 1),
          "later-%d" % i)
        r("HSET", "drover:{default}:job:later-%d" % i, "job", "resize",
          "id", "later-%d" % i, "attempt", "1")
    dead = "drover:{default}:dead"
    r("XADD", dead, "*", "job", "resize", "id", "xss-script",
      "path", XSS_SCRIPT, "error", "exit status 1: " + XSS_IMG,
      "attempts", "4", "failed_at", str(now - 3600000))
    r("XADD", dead, "*", "job", "resize", "id", "retry-me",
      "path", "/srv/img/broken.png", "width", "0",
      "error", "convert: improper image header", "attempts", "4",
      "failed_at", str(now - 600000))
    # the same job id dead twice: Retry on one entry moves that one only
    r("XADD", dead, "*", "job", "resize", "id", "retry-me",
      "path", "/srv/img/broken.png", "width", "0",
      "error", "convert: improper image header", "attempts", "4",
      "failed_at", str(now - 300000))
    r("XADD", dead, "*", "job", "resize", "id", "img-bad",
      "note", XSS_IMG, "error", "missing field width", "attempts", "1",
      "failed_at", str(now - 60000))
    r("HSET", "drover:{default}:stats", "processed", "18234", "failed",
      "311", "retried", "240", "dead", "4")
    r("XADD", "drover:{emails}:jobs", "*", "job", "send-mail", "id", "m-1",
      "to", "ops@example.com")
    r("HSET", "drover:{emails}:stats", "processed", "5120", "failed", "12",
      "retried", "12")
    r("SET", "drover:{emails}:paused", str(now))
    r("HSET", "drover:{reports}:stats", "processed", "96")
    r("HSET", "drover:{default}:result:done-1", "status", "ok", "result",
      "{\"pages\": 12}", "attempts", "1", "finished_at", str(now - 5000))
    beat(r)


def beat(r):
    """Two workers' registry entries, beating now."""
    now = int(time.time() * 1000)
    for w, busy, queues in (("web-1:4211", 14, "default,emails"),
                            ("web-2:4388", 3, "default,emails,reports")):
        host, pid = w.split(":")
        r("HSET", "drover:workers", w,
          "host=%s pid=%s started=%d queues=%s busy=%d beat=%d" %
          (host, pid, now - 7200000, queues, busy, now - 1000))


# ---------------------------------------------------------------- tests

class Ctx:
    pass


def test_queue_table(c):
    b = c.browser
    row = 'tr[data-queue="default"] td.'
    wait_for("queue table", lambda: b.text(row + "ready") == "5")
    assert b.text(row + "running") == "2", b.text(row + "running")
    assert b.text(row + "delayed") == "3"
    assert b.text(row + "dead") == "4"
    assert b.text(row + "processed") == "18,234"
    assert b.text(row + "failed") == "311"
    assert b.text('tr[data-queue="emails"] td.state') == "paused"
    assert b.text('tr[data-queue="emails"] td.ready') == "1"
    assert b.text('tr[data-queue="default"] td.state') == "active"
    assert b.text("#t-dead") == "4"
    # numbers follow Redis on the next poll
    c.redis("HINCRBY", "drover:{reports}:stats", "processed", "4")
    wait_for("reports processed 100",
             lambda: b.text('tr[data-queue="reports"] td.processed') ==
             "100")
    wait_for("workers", lambda: len(b.find_all("#workers tbody tr")) == 2)
    assert b.text('tr[data-worker="web-1:4211"] td.busy') == "14"


def test_hostile_fields_are_text(c):
    b = c.browser
    wait_for("dead list", lambda: len(b.find_all("#dead-list .dead-entry")) == 4)
    cells = [b.s("GET", "/element/%s/text" % e)
             for e in b.find_all("#dead-list table.fields td")]
    assert XSS_SCRIPT in cells, cells
    assert XSS_IMG in cells, cells
    assert b.js("return window.__drover_pwned === undefined") is True
    assert b.js("return document.querySelectorAll("
                "'#dead-list img, #dead-list script').length") == 0
    # the error line shows the markup as text too
    errors = [b.s("GET", "/element/%s/text" % e)
              for e in b.find_all("#dead-list .dead-error")]
    assert "exit status 1: " + XSS_IMG in errors, errors


def ids_in(c, stream):
    """The id field of every entry of a stream."""
    ids = []
    for e in c.redis("XRANGE", stream, "-", "+"):
        f = e[1]
        ids.append(dict(zip(f[::2], f[1::2])).get("id"))
    return ids


def stream_ids(c):
    return ids_in(c, "drover:{default}:jobs")


def test_retry_puts_back_on_stream(c):
    b = c.browser
    entries = [e[0] for e in c.redis("XRANGE", "drover:{default}:dead", "-",
                                     "+") if "retry-me" in e[1]]
    assert len(entries) == 2
    assert "retry-me" not in stream_ids(c)
    b.click('#dead-list .dead-entry[data-entry="%s"] button[data-action=retry]'
            % entries[0])
    wait_for("retry-me back on the stream",
             lambda: "retry-me" in stream_ids(c))
    # that entry left dead; the other one with the same job id stayed
    left = [e[0] for e in c.redis("XRANGE", "drover:{default}:dead", "-", "+")]
    assert entries[0] not in left and entries[1] in left, left
    assert stream_ids(c).count("retry-me") == 1
    assert c.redis("XLEN", "drover:{default}:dead") == 3
    wait_for("dead list refreshed",
             lambda: len(b.find_all("#dead-list .dead-entry")) == 3)
    wait_for("table ready 6",
             lambda: b.text('tr[data-queue="default"] td.ready') == "6")


POST_SCRIPT = """
const [path, headers, done] = arguments;
fetch(path, {method: 'POST', headers: headers, body: '{"all": true}'})
  .then(r => done(r.status)).catch(e => done('error ' + e));
"""


def test_post_without_csrf_changes_nothing(c):
    b = c.browser
    before_dead = c.redis("XLEN", "drover:{default}:dead")
    before_jobs = c.redis("XLEN", "drover:{default}:jobs")
    for path in ("/api/queues/default/pause",
                 "/api/queues/default/dead/retry",
                 "/api/queues/default/dead/purge"):
        st = b.js_async(POST_SCRIPT, path,
                        {"Content-Type": "application/json"})
        assert st == 403, (path, st)
        st = b.js_async(POST_SCRIPT, path,
                        {"Content-Type": "application/json",
                         "X-CSRF-Token": "0" * 64})
        assert st == 403, (path, st)
    assert c.redis("EXISTS", "drover:{default}:paused") == 0
    assert c.redis("XLEN", "drover:{default}:dead") == before_dead
    assert c.redis("XLEN", "drover:{default}:jobs") == before_jobs
    # the page's own button (with the token) does change it
    b.click('tr[data-queue="default"] button[data-action=pause]')
    wait_for("default paused",
             lambda: c.redis("EXISTS", "drover:{default}:paused") == 1)
    wait_for("paused shown",
             lambda: b.text('tr[data-queue="default"] td.state') == "paused")
    b.click('tr[data-queue="default"] button[data-action=resume]')
    wait_for("default resumed",
             lambda: c.redis("EXISTS", "drover:{default}:paused") == 0)


def submit(b, form, field, queue, text):
    """Pick queue in select FIELD-queue, type text into input FIELD-id,
    submit form FORM."""
    b.js("document.getElementById(arguments[0] + '-queue').value = "
         "arguments[1]; document.getElementById(arguments[0] + '-id')"
         ".value = ''", field, queue)
    b.type("#%s-id" % field, text)
    b.click("#%s button[type=submit]" % form)


def look_up(b, job_id):
    """Type job_id into "Find a job" (queue default) and submit."""
    submit(b, "lookup", "lookup", "default", job_id)


def test_job_lookup(c):
    b = c.browser
    look_up(b, "later-1")
    wait_for("delayed state", lambda: b.text("#job .badge") == "delayed")
    look_up(b, "done-1")
    wait_for("ok state", lambda: b.text("#job .badge") == "ok")
    assert '{"pages": 12}' in b.text("#job table.fields")
    look_up(b, "no-such-job")
    wait_for("unknown job", lambda: "knows nothing" in b.text("#job"))


def show_run(b, run_id):
    """Type run_id into "Pipeline run" (queue graphs) and submit."""
    submit(b, "run-lookup", "run", "graphs", run_id)


NODES_JS = """
return Array.from(document.querySelectorAll('#run-graph g.gnode')).map(g =>
  [g.getAttribute('data-node'), g.getAttribute('data-state'),
   g.querySelector('text.gstate').textContent,
   g.querySelector('title').textContent]);
"""


def graph_nodes(b):
    """{node: (state, state line, tooltip)} of the SVG drawn."""
    return {n[0]: tuple(n[1:]) for n in b.js(NODES_JS)}


def graph_edges(b):
    return sorted(b.js("return Array.from(document.querySelectorAll("
                       "'#run-graph path.gedge')).map(e => "
                       "e.getAttribute('data-from') + '>' + "
                       "e.getAttribute('data-to'))"))


def run_status(c, run_id):
    return c.redis("HGET", "drover:{graphs}:run:" + run_id, "status")


def test_graph_runs(c):
    b = c.browser
    binary = os.path.join(os.environ.get("DROVER_BIN_DIR", "bin"), "droverd")
    log = open(os.path.join(c.tmp, "droverd.log"), "w")
    droverd = subprocess.Popen([binary, "-c", c.conf, "--queues", "graphs"],
                               stdout=log, stderr=log)
    c.droverd = droverd
    try:
        jobs = "drover:{graphs}:jobs"
        c.redis("XADD", jobs, "*", "pipeline", "publish", "id", "pub-1")
        c.redis("XADD", jobs, "*", "pipeline", "fragile", "id", XSS_SCRIPT)
        wait_for("run pub-1 ok", lambda: run_status(c, "pub-1") == "ok")
        wait_for("the fragile run dead",
                 lambda: run_status(c, XSS_SCRIPT) == "dead")

        # the diamond: every node drawn, by state, with its edges
        show_run(b, "pub-1")
        wait_for("graph of pub-1", lambda: len(graph_nodes(b)) == 5)
        nodes = graph_nodes(b)
        assert {n: v[0] for n, v in nodes.items()} == {
            "fetch": "ok", "thumbs": "ok", "probe": "ok", "report": "ok",
            "undo": "standby"}, nodes
        assert nodes["thumbs"][1] == "ok \u00b7 3/3", nodes["thumbs"]
        assert "attempts: 1" in nodes["fetch"][2], nodes["fetch"]
        assert "needs: thumbs, probe" in nodes["report"][2], nodes["report"]
        assert graph_edges(b) == ["fetch>probe", "fetch>thumbs",
                                  "probe>report", "thumbs>report"]
        assert b.text("#run-status") == "ok"
        # columns by depth: fetch, then thumbs and probe, then report
        xs = b.js("const x = n => document.querySelector("
                  "'#run-graph g.gnode[data-node=\"' + n + '\"]')"
                  ".transform.baseVal[0].matrix.e;"
                  "return ['fetch', 'thumbs', 'probe', 'report', 'undo']"
                  ".map(x)")
        assert xs[0] < xs[1] == xs[2] < xs[3] < xs[4], xs
        # a click shows the node's details
        b.click('#run-graph g.gnode[data-node="thumbs"]')
        wait_for("node details", lambda: "thumbs" in b.text("#run-node"))
        assert '["t1","t2","t3"]' in b.text("#run-node")

        # "Find a job" with a run's id leads to the run
        show_run(b, "no-such-run")
        wait_for("unknown run", lambda: "No pipeline run" in b.text("#run"))
        submit(b, "lookup", "lookup", "graphs", "pub-1")
        wait_for("lookup says run", lambda: "graph pipeline run" in
                 b.text("#job"))
        b.click("#job-show-run")
        wait_for("pub-1 shown again", lambda: len(graph_nodes(b)) == 5)

        # the dead run: its id and error are hostile, shown as text
        show_run(b, XSS_SCRIPT)
        wait_for("graph of the fragile run",
                 lambda: graph_nodes(b).get("convert", ("",))[0] == "dead")
        nodes = graph_nodes(b)
        assert nodes["report"][0] == "cancelled", nodes
        wait_for("compensation ran", lambda: run_status(c, XSS_SCRIPT)
                 and c.redis("HGET", "drover:{graphs}:run:" + XSS_SCRIPT,
                             "undo.state") == "ok")
        assert XSS_IMG in nodes["convert"][2], nodes["convert"]
        assert XSS_SCRIPT in b.text("#run .job-state")
        assert XSS_IMG in b.text("#run .dead-error")
        assert b.js("return window.__drover_pwned === undefined") is True
        assert b.js("return document.querySelectorAll("
                    "'#run img, #run script').length") == 0

        # a running run is followed until it ends
        c.redis("XADD", jobs, "*", "pipeline", "slow", "id", "slow-1")
        wait_for("slow-1 fanned out and probed", lambda: c.redis(
            "HMGET", "drover:{graphs}:run:slow-1", "thumbs.state",
            "probe.state") == ["running", "ok"])
        show_run(b, "slow-1")
        wait_for("slow-1 drawn running",
                 lambda: graph_nodes(b).get("thumbs", ("",))[0] == "running")
        nodes = graph_nodes(b)
        assert nodes["thumbs"][1] == "running \u00b7 0/3", nodes["thumbs"]
        assert nodes["report"][0] == "waiting", nodes
        assert b.text("#run-status") == "running"
        b.click('#run-graph g.gnode[data-node="thumbs"]')
        wait_for("thumbs' details", lambda: "0/3" in b.text("#run-node"))
        if os.environ.get("DROVER_SCREENSHOT"):
            shot_graph(c, "a run mid-way")
        open(os.path.join(c.tmp, "release"), "w").close()
        wait_for("slow-1 drawn ok", lambda: b.text("#run-status") == "ok")
        assert graph_nodes(b)["report"][0] == "ok"

    finally:
        droverd.send_signal(signal.SIGTERM)
        try:
            droverd.wait(30)
        except subprocess.TimeoutExpired:
            droverd.kill()
            droverd.wait()
        log.close()
    assert droverd.returncode == 0, droverd.returncode


def shot_graph(c, what):
    """The "Pipeline run" card as NAME-graph.png (NAME.png being
    DROVER_SCREENSHOT)."""
    b = c.browser
    base, ext = os.path.splitext(os.environ["DROVER_SCREENSHOT"])
    path = base + "-graph" + (ext or ".png")
    card = b.js("const e = document.getElementById('run').closest('.card');"
                "e.scrollIntoView(); return e")
    time.sleep(0.3)
    png = base64.b64decode(b.s("GET", "/element/%s/screenshot" %
                               card[ELEMENT]))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png)
    print("graph screenshot (%s) saved to %s" % (what, path))


def test_page_obeys_its_csp(c):
    b = c.browser
    # the page itself: no CSP violation, no script error (the 403s and
    # the 404 the tests above asked for are expected)
    bad = [e["message"] for e in b.log()
           if "Failed to load resource" not in e.get("message", "") and
           (e.get("level") == "SEVERE" or
            "Content Security Policy" in e.get("message", ""))]
    assert not bad, bad
    # and the policy is on: an inline script injected now does not run
    ran = b.js("const s = document.createElement('script');"
               "s.textContent = 'window.__drover_inline = 1';"
               "document.body.appendChild(s);"
               "return window.__drover_inline === 1")
    assert ran is False
    wait_for("CSP violation reported",
             lambda: any("Content Security Policy" in e.get("message", "")
                         for e in b.log()))


def take_screenshot(c, path):
    """Feed the counters for a while so the chart has a story, then
    look up a job and save the page."""
    b = c.browser
    stop = time.monotonic() + 16
    i = 0
    while time.monotonic() < stop:
        c.redis("HINCRBY", "drover:{default}:stats", "processed",
                str(55 + (i * 7) % 30))
        c.redis("HINCRBY", "drover:{emails}:stats", "processed",
                str(20 + (i * 3) % 12))
        if i % 3 == 0:
            c.redis("HINCRBY", "drover:{default}:stats", "failed",
                    str(1 + i % 4))
        if i % 8 == 0:      # the workers beat, as live ones do
            beat(c.redis)
        i += 1
        time.sleep(0.5)
    look_up(b, "retry-me")
    wait_for("lookup shown", lambda: b.text("#job .badge") != "")
    b.js("window.scrollTo(0, 0)")
    time.sleep(0.3)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    b.screenshot(path)
    print("screenshot saved to %s" % path)


TESTS = [
    test_queue_table,
    test_hostile_fields_are_text,
    test_retry_puts_back_on_stream,
    test_post_without_csrf_changes_nothing,
    test_job_lookup,
    test_graph_runs,
    test_page_obeys_its_csp,
]


def main():
    tmp = tempfile.mkdtemp(prefix="drover-browser-")
    procs = []
    c = Ctx()
    c.tmp = tmp
    c.conf = os.path.join(tmp, "drover.yaml")
    passed, failed = [], []
    print("[==========] Running %d test(s)." % len(TESTS))
    sys.stdout.flush()
    try:
        rproc, rport, c.redis = start_redis(tmp)
        procs.append(rproc)
        seed(c.redis)
        c.web, c.url = start_web(tmp, rport)
        procs.append(c.web)
        dproc, dport = start_chromedriver(tmp)
        procs.append(dproc)
        c.browser = Browser(dport, tmp)
        c.browser.go(c.url)
        for t in TESTS:
            print("[ RUN      ] %s" % t.__name__)
            try:
                t(c)
                print("[       OK ] %s" % t.__name__)
                passed.append(t.__name__)
            except Exception:
                traceback.print_exc(file=sys.stdout)
                print("[  FAILED  ] %s" % t.__name__)
                failed.append(t.__name__)
            sys.stdout.flush()
        shot = os.environ.get("DROVER_SCREENSHOT")
        if shot and not failed:
            take_screenshot(c, shot)
    except Exception:
        traceback.print_exc(file=sys.stdout)
        failed.append("setup")
    finally:
        if getattr(c, "browser", None) is not None:
            c.browser.quit()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # drover web stops cleanly on SIGTERM (an ASan build: no leak)
        web = getattr(c, "web", None)
        if web is not None and web.returncode != 0:
            print("drover web exited with status %s (log: %s/web.log)"
                  % (web.returncode, tmp))
            failed.append("drover web clean stop")
        if os.environ.get("DROVER_TEST_KEEP") == "1" or failed:
            print("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("[==========] %d test(s) run." % (len(passed) + len(failed)))
    print("[  PASSED  ] %d test(s)." % len(passed))
    if failed:
        print("[  FAILED  ] %d test(s), listed below:" % len(failed))
        for name in failed:
            print("[  FAILED  ] %s" % name)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
