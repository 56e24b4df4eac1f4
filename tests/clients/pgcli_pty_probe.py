"""pgcli as a person starts it, in a pseudo-terminal of its own: it refreshes its
completions in the background at start (where a failing catalog query prints a
traceback), then runs each command given. Prints what the terminal showed. Run by
tests/it/serve_clients.rs: python pgcli_pty_probe.py URL COMMAND..."""
import os, pty, sys, time, select
url = sys.argv[1]
cmds = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"
    os.environ["PAGER"] = "cat"
    os.execvp(os.path.join(os.path.dirname(sys.executable), "pgcli"), ["pgcli", "--less-chatty", url])
out = b""
def pump(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try: out += os.read(fd, 65536)
            except OSError: return
pump(6)
for c in cmds:
    os.write(fd, (c + "\r").encode())
    pump(3)
os.write(fd, b"\\q\r")
pump(2)
try: os.kill(pid, 9)
except Exception: pass
sys.stdout.write(out.decode(errors="replace"))
