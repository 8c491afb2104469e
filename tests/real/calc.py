# A Python computation for the real-program C/R test: a running SHA-256
# over a sequence, a dict and a list that grow, printed as it goes.  Its
# last line depends on every step, so a restore that lost or repeated
# anything shows.
import hashlib
import sys
import time

h = hashlib.sha256()
seen = {}
squares = []
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 80):
    squares.append(i * i)
    seen[str(i)] = sum(squares) % 1000003
    h.update(repr((i, seen[str(i)])).encode())
    print(i, h.hexdigest()[:16], flush=True)
    time.sleep(0.05)
print("done", h.hexdigest(), len(seen), flush=True)
