#!/usr/bin/env bash
# The Dockerfile, checked without a Docker daemon (none runs on the build
# machines): its shape (two stages on debian:12-slim, a non-root user, the
# state folder as a volume, a HEALTHCHECK on /ready, the entry point), and
# its runtime stage's packages against what the installed files need: the
# build's install tree (what the build stage copies over) is made here with
# `cmake --install`, and every library the binary and the plugins load must
# come from the image (the install tree, debian:12-slim, or a package the
# runtime stage installs). Building and running the image needs Docker: not
# run here.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}" "${TEST_BUILD_DIR:?}"
DF="$TEST_SRCDIR/Dockerfile"

/usr/bin/python3 - "$DF" >"$T/packages" <<'PY' || fail "the Dockerfile's shape"
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [l for l in lines if l.startswith("FROM ")]
assert froms == ["FROM debian:12-slim AS build", "FROM debian:12-slim"], froms
runtime = lines[lines.index(froms[1]) + 1:]
def one(prefix):
    got = [l for l in runtime if l.startswith(prefix)]
    assert len(got) == 1, (prefix, got)
    return got[0]
assert one("USER ") == "USER inferd", "runs as root"
assert "INFERD_STATE_DIR=/var/lib/inferd" in one("ENV ") and one("VOLUME ") == "VOLUME /var/lib/inferd"
assert re.search(r"HEALTHCHECK .*CMD curl -fsS http://127\.0\.0\.1:8080/ready", one("HEALTHCHECK "))
assert one("ENTRYPOINT ") == 'ENTRYPOINT ["/usr/local/bin/inferd", "serve"]'
assert one("COPY ") == "COPY --from=build /stage/ /", "the runtime takes only the install tree"
run = [l for l in runtime if l.startswith("RUN ") and "apt-get install" in l][0]
pkgs = run.split("--no-install-recommends", 1)[1].split("&&")[0].split()
print("\n".join(pkgs))
PY
pass "the Dockerfile: two stages on debian:12-slim, user inferd, /var/lib/inferd a volume, HEALTHCHECK on /ready, the install tree only"

# The install tree, as the build stage makes it.
DESTDIR="$T/stage" cmake --install "$TEST_BUILD_DIR" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$T/install.log")"
prefix=$(sed -n 's/^ExecStart=\(.*\)\/bin\/inferd serve$/\1/p' "$TEST_BUILD_DIR/inferd.service")
root="$T/stage$prefix"
for f in bin/inferd lib/libinferd.so.0 lib/inferd/libonnxruntime.so.1 lib/inferd/builtin/onnxruntime.so \
         lib/inferd/builtin/media.so share/inferd/models/dot_density.onnx share/inferd/python/inferd/plugin.py; do
  [ -e "$root/$f" ] || fail "the install tree lacks $prefix/$f"
done
# Every library the installed files need, outside the tree, by its Debian package.
: >"$T/needed"
while IFS= read -r f; do
  LD_LIBRARY_PATH="$root/lib:$root/lib/inferd" ldd "$f" 2>/dev/null |
    awk '/=> \// {print $3}' | grep -v "^$T/" >>"$T/needed" || true
done < <(find "$root" -type f \( -name '*.so*' -o -path '*/bin/*' \))
sort -u "$T/needed" -o "$T/needed"
[ -s "$T/needed" ] || fail "ldd found no library"
# What the runtime stage's packages install: them and their dependencies.
{ cat "$T/packages"
  # shellcheck disable=SC2046 # the package names, one word each
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $(cat "$T/packages") 2>/dev/null |
    awk '$1 == "Depends:" || $1 == "|Depends:" {print $2}'
  # a virtual dependency's provider is listed under it, indented
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $(cat "$T/packages") 2>/dev/null | awk 'NF == 1 && /^    / {print $1}'
} | tr -d '<>' | sed 's/:any$//' | sort -u >"$T/installed"
: >"$T/missing"
while IFS= read -r lib; do
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) ||
    pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1)
  [ -n "$pkg" ] || { echo "$lib (no package)" >>"$T/missing"; continue; }
  # debian:12-slim has these; the runtime stage's list and what they pull in, the rest.
  # The sanitizers' runtime is the test build's (make test's second run), not the image's.
  case "$pkg" in libasan[0-9]* | libubsan[0-9]*) continue ;; esac
  case " libc6 libgcc-s1 libstdc++6 zlib1g libgnutls30 libssl3 libzstd1 liblzma5 libbz2-1.0 libgcrypt20 libgpg-error0 libp11-kit0 libtasn1-6 libunistring2 libidn2-0 libnettle8 libhogweed6 libgmp10 libffi8 libcrypt1 libacl1 libselinux1 libpcre2-8-0 libudev1 libsystemd0 liblz4-1 libcap2 libmd0 libseccomp2 libsemanage2 libaudit1 libdb5.3 " in
    *" $pkg "*) continue ;;
  esac
  grep -qx "$pkg" "$T/installed" || echo "$lib ($pkg)" >>"$T/missing"
done <"$T/needed"
[ ! -s "$T/missing" ] || fail "the runtime stage lacks the packages of: $(tr '\n' ' ' <"$T/missing")"
pass "the runtime stage's packages give every library the binary, libinferd and the plugins load ($(wc -l <"$T/needed") libraries)"
