#!/usr/bin/python3
# tests/infra/pty_answer.py: runs a command on a new pty (its controlling
# terminal), waits for a prompt, types one secret line, and exits with the
# command's status.  The secret comes on stdin, never on a command line.
# A second prompt means the secret was refused: the command is killed and
# this exits 1 without retrying.  For check.sh and floors.sh only; the
# library answers prompts itself.
#
#   echo "$password" | pty_answer.py 'PROMPT_REGEX' TIMEOUT_S cmd args...
import os, pty, re, select, signal, sys, time

def main():
    prompt = re.compile(sys.argv[1].encode(), re.I)
    deadline = time.monotonic() + float(sys.argv[2])
    secret = sys.stdin.readline().rstrip("\n").encode()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[3], sys.argv[3:])
        finally:
            os._exit(127)
    seen, answered, out = b"", False, b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            sys.stderr.write("pty_answer: timed out; output: %r\n" % out)
            return 124
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the pty closed.
            chunk = b""
        if not chunk:
            break
        out += chunk
        seen += chunk
        if prompt.search(seen):
            if answered:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                sys.stderr.write("pty_answer: prompted again (secret refused)\n")
                sys.stdout.buffer.write(out)
                return 1
            os.write(fd, secret + b"\n")
            answered, seen = True, b""
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(out)
    return os.waitstatus_to_exitcode(status)

if __name__ == "__main__":
    sys.exit(main())
