/*
 * drover/json.h -- a streaming JSON writer into a struct drv_buf.
 *
 * The writer keeps the nesting and the commas: the caller opens objects
 * and arrays, names members and writes values, and the writer puts the
 * separators in. It writes compact JSON (no spaces, no newlines).
 *
 * Strings and byte values. Redis values are byte strings; JSON strings are
 * Unicode. Every value is written by one rule:
 *
 *   - '"' and '\\' are escaped; \n, \r and \t as such; every other byte
 *     below 0x20, and 0x7f, as \u00XX (so NUL is \u0000);
 *   - a valid UTF-8 sequence is written as it is;
 *   - every other byte (not part of valid UTF-8: 0xff, a lone 0xc3, ...)
 *     is written as \u00XX, the Latin-1 code point of the byte.
 *
 * The output is therefore always valid UTF-8 and valid JSON, whatever the
 * bytes. The third case cannot be told apart from the same code point
 * written in UTF-8, so drv_json_member_bytes adds, for a value that is
 * not valid UTF-8, a second member NAME_b64 holding the exact bytes in
 * base64 (RFC 4648, with padding). A reader that needs the bytes uses
 * NAME_b64 when present, else NAME encoded as UTF-8.
 *
 * Misuse (a value where a member name is due, an end without a begin,
 * nesting deeper than DRV_JSON_DEPTH_MAX) is a programming error and
 * asserts. Single-threaded: one writer belongs to one thread.
 */
#ifndef DROVER_JSON_H
#define DROVER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "drover/buf.h"

#define DRV_JSON_DEPTH_MAX 32

struct drv_json {
    unsigned magic;
#define DRV_JSON_MAGIC 0x150a0b1eU
    struct drv_buf *out;                 /* borrowed: where JSON goes */
    int depth;                           /* open objects and arrays */
    unsigned char is_obj[DRV_JSON_DEPTH_MAX]; /* level i is an object */
    unsigned char count[DRV_JSON_DEPTH_MAX];  /* level i has a value
                                                 (1) or not yet (0) */
    int want_value;                      /* a member name was written */
};

/* drv_json_init -- start writing into out (borrowed until _fini). */
void drv_json_init(struct drv_json *j, struct drv_buf *out);

/* drv_json_fini -- end; asserts every object and array was closed. */
void drv_json_fini(struct drv_json *j);

/* drv_json_object_begin / _end, drv_json_array_begin / _end -- open
 * and close a container (as a value, or as the top-level value). */
void drv_json_object_begin(struct drv_json *j);
void drv_json_object_end(struct drv_json *j);
void drv_json_array_begin(struct drv_json *j);
void drv_json_array_end(struct drv_json *j);

/* drv_json_key -- the next member's name (inside an object only); name
 * is escaped like any string. */
void drv_json_key(struct drv_json *j, const char *name);

/* Values: a string of n bytes (the rule above), a NUL-terminated string,
 * an integer, a boolean, null. */
void drv_json_str(struct drv_json *j, const char *s, size_t n);
void drv_json_strz(struct drv_json *j, const char *s);
void drv_json_int(struct drv_json *j, int64_t v);
void drv_json_bool(struct drv_json *j, int v);
void drv_json_null(struct drv_json *j);

/* Members: key then value. _strz writes null for a NULL s; _int writes
 * null for a negative v when unknown_negative is set (counts that Redis
 * could not tell). */
void drv_json_member_strz(struct drv_json *j, const char *key,
                          const char *s);
void drv_json_member_int(struct drv_json *j, const char *key, int64_t v,
                         int unknown_negative);
void drv_json_member_bool(struct drv_json *j, const char *key, int v);

/*
 * drv_json_member_bytes -- member key with the bytes s[0..n) (s NULL:
 * null), and, when they are not valid UTF-8, a member key_b64 with their
 * base64. Use it for every value that comes from a job or from Redis.
 */
void drv_json_member_bytes(struct drv_json *j, const char *key,
                           const char *s, size_t n);

/* drv_base64 -- append the base64 (RFC 4648, padded) of s[0..n) to b. */
void drv_base64(struct drv_buf *b, const void *s, size_t n);

#endif
