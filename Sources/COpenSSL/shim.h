#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/sha.h>
#include <openssl/crypto.h>
/* One-shot SHA-256; out must hold 32 bytes. */
static inline void copenssl_sha256(const void *data, size_t len, unsigned char *out) { SHA256((const unsigned char *)data, len, out); }
/* Constant-time comparison of two equal-length buffers: 0 when equal. */
static inline int copenssl_memcmp(const void *a, const void *b, size_t len) { return CRYPTO_memcmp(a, b, len); }
#endif
