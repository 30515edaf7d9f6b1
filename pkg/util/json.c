/*
 * json.c -- the streaming JSON writer (see drover/json.h for the string
 * rule), and base64.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "drover/common.h"
#include "drover/json.h"

void
drv_json_init(struct drv_json *j, struct drv_buf *out)
{
    memset(j, 0, sizeof *j);
    j->magic = DRV_JSON_MAGIC;
    j->out = out;
}

void
drv_json_fini(struct drv_json *j)
{
    DRV_CHECK_OBJ(j, DRV_JSON_MAGIC);
    DRV_ASSERT(j->depth == 0 && !j->want_value);
    j->magic = 0;
}

/* Before any value: the comma between array elements, and the check
 * that an object member got its name first. */
static void
before_value(struct drv_json *j)
{
    DRV_CHECK_OBJ(j, DRV_JSON_MAGIC);
    if (j->want_value) {
        j->want_value = 0;
        return;
    }
    if (j->depth == 0)
        return;
    DRV_ASSERT(!j->is_obj[j->depth - 1]); /* a member needs a key */
    if (j->count[j->depth - 1])
        drv_buf_add(j->out, ",", 1);
    j->count[j->depth - 1] = 1;
}

static void
open_container(struct drv_json *j, int is_obj)
{
    before_value(j);
    DRV_ASSERT(j->depth < DRV_JSON_DEPTH_MAX);
    j->is_obj[j->depth] = (unsigned char)is_obj;
    j->count[j->depth] = 0;
    j->depth++;
    drv_buf_add(j->out, is_obj ? "{" : "[", 1);
}

static void
close_container(struct drv_json *j, int is_obj)
{
    DRV_CHECK_OBJ(j, DRV_JSON_MAGIC);
    DRV_ASSERT(j->depth > 0 && j->is_obj[j->depth - 1] == is_obj &&
               !j->want_value);
    j->depth--;
    drv_buf_add(j->out, is_obj ? "}" : "]", 1);
}

void
drv_json_object_begin(struct drv_json *j)
{
    open_container(j, 1);
}

void
drv_json_object_end(struct drv_json *j)
{
    close_container(j, 1);
}

void
drv_json_array_begin(struct drv_json *j)
{
    open_container(j, 0);
}

void
drv_json_array_end(struct drv_json *j)
{
    close_container(j, 0);
}

void
drv_json_key(struct drv_json *j, const char *name)
{
    DRV_CHECK_OBJ(j, DRV_JSON_MAGIC);
    DRV_ASSERT(j->depth > 0 && j->is_obj[j->depth - 1] && !j->want_value);
    if (j->count[j->depth - 1])
        drv_buf_add(j->out, ",", 1);
    j->count[j->depth - 1] = 1;
    drv_buf_json_str(j->out, name, strlen(name));
    drv_buf_add(j->out, ":", 1);
    j->want_value = 1;
}

void
drv_json_str(struct drv_json *j, const char *s, size_t n)
{
    before_value(j);
    drv_buf_json_str(j->out, s, n);
}

void
drv_json_strz(struct drv_json *j, const char *s)
{
    drv_json_str(j, s, strlen(s));
}

void
drv_json_int(struct drv_json *j, int64_t v)
{
    before_value(j);
    drv_buf_addf(j->out, "%" PRId64, v);
}

void
drv_json_bool(struct drv_json *j, int v)
{
    before_value(j);
    drv_buf_adds(j->out, v ? "true" : "false");
}

void
drv_json_null(struct drv_json *j)
{
    before_value(j);
    drv_buf_adds(j->out, "null");
}

void
drv_json_member_strz(struct drv_json *j, const char *key, const char *s)
{
    drv_json_key(j, key);
    if (s == NULL)
        drv_json_null(j);
    else
        drv_json_strz(j, s);
}

void
drv_json_member_int(struct drv_json *j, const char *key, int64_t v,
                    int unknown_negative)
{
    drv_json_key(j, key);
    if (unknown_negative && v < 0)
        drv_json_null(j);
    else
        drv_json_int(j, v);
}

void
drv_json_member_bool(struct drv_json *j, const char *key, int v)
{
    drv_json_key(j, key);
    drv_json_bool(j, v);
}

void
drv_json_member_bytes(struct drv_json *j, const char *key, const char *s,
                      size_t n)
{
    char b64key[128];

    drv_json_key(j, key);
    if (s == NULL) {
        drv_json_null(j);
        return;
    }
    drv_json_str(j, s, n);
    if (drv_utf8_valid(s, n))
        return;
    snprintf(b64key, sizeof b64key, "%s_b64", key);
    drv_json_key(j, b64key);
    before_value(j);
    drv_buf_add(j->out, "\"", 1);
    drv_base64(j->out, s, n);
    drv_buf_add(j->out, "\"", 1);
}

/* ------------------------------------------------------------- base64 */

void
drv_base64(struct drv_buf *b, const void *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = s;
    char q[4];
    size_t i;
    uint32_t v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = abc[(v >> 6) & 63];
        q[3] = abc[v & 63];
        drv_buf_add(b, q, 4);
    }
    if (i < n) {
        v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        q[3] = '=';
        drv_buf_add(b, q, 4);
    }
}
