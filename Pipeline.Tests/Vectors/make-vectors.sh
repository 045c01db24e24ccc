#!/usr/bin/env bash
# Makes the known-answer vectors for the methods that have no published test vector, with this machine's
# OpenSSL (`openssl enc`), libsodium (through Python ctypes) and Python's `cryptography` (OpenSSL's OCB).
# Output: vectors.txt, one vector per line:
#   method  key-hex  iv-hex  plaintext-hex  ciphertext-hex  (AEAD: ciphertext-hex is ciphertext || tag, iv is the nonce)
# and evp.txt: password  key-length  EVP_BytesToKey(MD5)-hex.
# Run from anywhere: bash Pipeline.Tests/Vectors/make-vectors.sh   (needs: openssl, python3, libsodium23, python3-cryptography)
set -euo pipefail
cd "$(dirname "$0")"
LEGACY=(-provider legacy -provider default)

# A 100-byte plaintext: not a multiple of any block size, so the tests also cover a partial last block.
PT=$(python3 -c 'print(bytes((i * 7 + 3) & 0xff for i in range(100)).hex())')
hex_of() { xxd -p | tr -d '\n'; }
enc() { # openssl-cipher key iv [extra flags...] -> ciphertext hex of $PT
  local cipher=$1 key=$2 iv=$3; shift 3
  echo -n "$PT" | xxd -r -p | openssl enc "$@" "-$cipher" -K "$key" ${iv:+-iv "$iv"} -nosalt -nopad | hex_of
}
K16=000102030405060708090a0b0c0d0e0f
K24=${K16}1011121314151617
K32=${K16}101112131415161718191a1b1c1d1e1f
IV16=f0e1d2c3b4a5968778695a4b3c2d1e0f
IV8=f0e1d2c3b4a59687

{
  # AES modes that the NIST vectors do not cover at every key size, CFB8 and CFB1 included.
  for bits in 128 192 256; do
    key=$([ $bits = 128 ] && echo $K16 || ([ $bits = 192 ] && echo $K24 || echo $K32))
    for mode in cfb ctr ofb cfb8 cfb1; do
      echo "aes-$bits-$mode $key $IV16 $PT $(enc "aes-$bits-$mode" "$key" "$IV16")"   # openssl enc -aes-$bits-$mode -K -iv -nosalt -nopad
    done
    for mode in cfb ctr ofb; do
      echo "camellia-$bits-$mode $key $IV16 $PT $(enc "camellia-$bits-$mode" "$key" "$IV16")"   # openssl enc -camellia-$bits-$mode
    done
  done
  echo "bf-cfb $K16 $IV8 $PT $(enc bf-cfb $K16 $IV8 "${LEGACY[@]}")"        # openssl enc -provider legacy -bf-cfb
  echo "cast5-cfb $K16 $IV8 $PT $(enc cast5-cfb $K16 $IV8 "${LEGACY[@]}")"  # openssl enc -provider legacy -cast5-cfb
  echo "des-cfb ${K16:0:16} $IV8 $PT $(enc des-cfb "${K16:0:16}" $IV8 "${LEGACY[@]}")"  # openssl enc -provider legacy -des-cfb
  echo "rc2-cfb $K16 $IV8 $PT $(enc rc2-cfb $K16 $IV8 "${LEGACY[@]}")"      # openssl enc -provider legacy -rc2-cfb (128-bit effective key)
  echo "seed-cfb $K16 $IV16 $PT $(enc seed-cfb $K16 $IV16 "${LEGACY[@]}")"  # openssl enc -provider legacy -seed-cfb
  echo "rc4 $K16 - $PT $(enc rc4 $K16 "" "${LEGACY[@]}")"                  # openssl enc -provider legacy -rc4
  # rc4-md5: RC4 keyed with MD5(key || iv)  (openssl dgst -md5, then openssl enc -rc4)
  md5key=$(echo -n "$K16$IV16" | xxd -r -p | openssl dgst -md5 -binary | hex_of)
  echo "rc4-md5 $K16 $IV16 $PT $(enc rc4 "$md5key" "" "${LEGACY[@]}")"

  # libsodium (the library ss-libev links): the Salsa20 family and the two ChaCha20-Poly1305 constructions it
  # has that OpenSSL lacks, through ctypes.
  python3 - "$PT" "$K32" <<'PY'
import ctypes, sys
pt, key = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
na = ctypes.CDLL("libsodium.so.23"); assert na.sodium_init() >= 0
def stream(fn, n):
    nonce = bytes(range(0xa0, 0xa0 + n)); out = ctypes.create_string_buffer(len(pt))
    assert getattr(na, fn)(out, pt, ctypes.c_ulonglong(len(pt)), nonce, key) == 0
    return nonce, out.raw
for method, fn, n in [("salsa20", "crypto_stream_salsa20_xor", 8), ("chacha20", "crypto_stream_chacha20_xor", 8),
                      ("chacha20-ietf", "crypto_stream_chacha20_ietf_xor", 12), ("xchacha20", "crypto_stream_xchacha20_xor", 24)]:
    nonce, ct = stream(fn, n)
    print(method, key.hex(), nonce.hex(), pt.hex(), ct.hex())
def aead(fn, n):
    nonce = bytes(range(0x50, 0x50 + n)); out = ctypes.create_string_buffer(len(pt) + 16); outlen = ctypes.c_ulonglong()
    assert getattr(na, fn)(out, ctypes.byref(outlen), pt, ctypes.c_ulonglong(len(pt)), None, ctypes.c_ulonglong(0), None, nonce, key) == 0
    return nonce, out.raw[:outlen.value]
for method, fn, n in [("chacha20-poly1305", "crypto_aead_chacha20poly1305_encrypt", 8),
                      ("xchacha20-ietf-poly1305", "crypto_aead_xchacha20poly1305_ietf_encrypt", 24),
                      ("chacha20-ietf-poly1305", "crypto_aead_chacha20poly1305_ietf_encrypt", 12)]:
    nonce, ct = aead(fn, n)
    print(method, key.hex(), nonce.hex(), pt.hex(), ct.hex())
PY

  # AES-OCB3 at every key size through Python's cryptography (OpenSSL underneath), 12-byte nonce, 16-byte tag.
  python3 - "$PT" "$K32" <<'PY'
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESOCB3
pt, k32 = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
nonce = bytes(range(0x60, 0x6c))
for size in (16, 24, 32):
    key = k32[:size]
    print(f"aes-{size * 8}-ocb", key.hex(), nonce.hex(), pt.hex(), AESOCB3(key).encrypt(nonce, pt, None).hex())
PY

  # table: Python shadowsocks's construction, run in Python (key = the password bytes, here "foobar!").
  python3 - "$PT" <<'PY'
import hashlib, struct, sys
pt, password = bytes.fromhex(sys.argv[1]), b"foobar!"
a, _ = struct.unpack("<QQ", hashlib.md5(password).digest())
table = list(range(256))
for i in range(1, 1024):
    table.sort(key=lambda x: a % (x + i))
print("table", password.hex(), "-", pt.hex(), bytes(table[b] for b in pt).hex())
PY
} > vectors.txt

# EVP_BytesToKey(MD5, no salt, one round): openssl enc -P prints the derived key.
{
  for password in foobar "correct horse battery staple" "π-ünïcode"; do
    for len in 16 24 32; do
      cipher=$([ $len = 16 ] && echo aes-128-cfb || ([ $len = 24 ] && echo aes-192-cfb || echo aes-256-cfb))
      key=$(openssl enc "-$cipher" -md md5 -nosalt -pass "pass:$password" -P 2>/dev/null | sed -n 's/^key=//p' | tr 'A-F' 'a-f')
      printf '%s\t%s\t%s\n' "$password" "$len" "$key"
    done
  done
} > evp.txt
wc -l vectors.txt evp.txt
