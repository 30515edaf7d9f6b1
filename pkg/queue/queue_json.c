/*
 * queue_json.c -- the JSON shape of each admin operation's answer, shared
 * by the CLI's --json and the dashboard's API (doc/cli-json.md).
 */
#include <string.h>

#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "queue_int.h"

/* Member name: the last value of field name as bytes, or null. */
static void
field_bytes(struct drv_json *j, const struct drv_job *job, const char *name)
{
    const struct drv_field *f = drv_job_field(job, name);

    drv_json_member_bytes(j, name, f ? f->value : NULL,
                          f ? f->value_len : 0);
}

/* Member name: the last value of field name as an integer; null when
 * absent or not a plain decimal number. */
static void
field_int(struct drv_json *j, const struct drv_job *job, const char *name)
{
    const struct drv_field *f = drv_job_field(job, name);
    int64_t v = -1;

    if (f != NULL && (f->value_len == 0 || f->value[0] == '-' ||
                      drv_parse_int(f->value, 0, INT64_MAX, &v) < 0))
        v = -1;
    drv_json_member_int(j, name, v, 1);
}

/* Five members from a record's fields: the first three as bytes, the
 * last two as integers (names[i] is both key and field name). */
static void
summary_json(struct drv_json *j, const struct drv_job *job,
             const char *const names[5])
{
    size_t i;

    for (i = 0; i < 3; i++)
        field_bytes(j, job, names[i]);
    for (; i < 5; i++)
        field_int(j, job, names[i]);
}

void
drv_queue_stats_json(struct drv_json *j, const char *queue,
                     const struct drv_queue_stats *s)
{
    drv_json_object_begin(j);
    drv_json_member_bytes(j, "name", queue, strlen(queue));
    drv_json_member_int(j, "ready", s->ready, 1);
    drv_json_member_int(j, "running", s->running, 1);
    drv_json_member_int(j, "delayed", s->delayed, 1);
    drv_json_member_int(j, "dead", s->dead, 1);
    drv_json_member_int(j, "dead_max", s->dead_max, 1);
    drv_json_member_int(j, "processed", s->processed, 1);
    drv_json_member_int(j, "failed", s->failed, 1);
    drv_json_member_int(j, "retried", s->retried, 1);
    drv_json_member_int(j, "dead_total", s->dead_total, 1);
    drv_json_member_int(j, "deduped", s->deduped, 1);
    drv_json_member_int(j, "cancelled", s->cancelled, 1);
    drv_json_member_bool(j, "paused", s->paused);
    drv_json_object_end(j);
}

/* "fields": [{"name", "value"}, ...], in order, duplicates kept. */
static void
fields_json(struct drv_json *j, const struct drv_job *job)
{
    size_t i;

    drv_json_key(j, "fields");
    drv_json_array_begin(j);
    for (i = 0; i < job->nfields; i++) {
        drv_json_object_begin(j);
        drv_json_member_bytes(j, "name", job->fields[i].name,
                              job->fields[i].name_len);
        drv_json_member_bytes(j, "value", job->fields[i].value,
                              job->fields[i].value_len);
        drv_json_object_end(j);
    }
    drv_json_array_end(j);
}

/* "entry_id" (null when none) and "id" (the id field, else the entry
 * id) of a record. */
static void
ids_json(struct drv_json *j, const struct drv_job *job)
{
    const struct drv_field *id = drv_job_field(job, "id");
    const char *eid = job->entry_id[0] != '\0' ? job->entry_id : NULL;

    drv_json_member_strz(j, "entry_id", eid);
    if (id != NULL && id->value_len > 0)
        drv_json_member_bytes(j, "id", id->value, id->value_len);
    else /* no id field: the entry id is the job's id */
        drv_json_member_strz(j, "id", eid);
}

void
drv_queue_job_json(struct drv_json *j, const struct drv_job *job)
{
    ids_json(j, job);
    fields_json(j, job);
}

static const char *const dead_names[5] = {
    "job", "pipeline", "error", "attempts", "failed_at",
};

void
drv_queue_dead_page_json(struct drv_json *j, const char *queue,
                         const struct drv_queue_dead_page *p)
{
    size_t i;

    drv_json_object_begin(j);
    drv_json_member_bytes(j, "queue", queue, strlen(queue));
    drv_json_member_int(j, "total", p->total, 1);
    drv_json_member_int(j, "count", (int64_t)p->n, 0);
    drv_json_member_strz(j, "next", p->next[0] ? p->next : NULL);
    drv_json_key(j, "entries");
    drv_json_array_begin(j);
    for (i = 0; i < p->n; i++) {
        const struct drv_job *e = p->entry[i];

        drv_json_object_begin(j);
        ids_json(j, e);
        summary_json(j, e, dead_names);
        fields_json(j, e);
        drv_json_object_end(j);
    }
    drv_json_array_end(j);
    drv_json_object_end(j);
}

/* "queues": the comma-separated list as an array (null when unknown). */
static void
queue_list(struct drv_json *j, const char *queues)
{
    const char *p = queues, *comma;

    drv_json_key(j, "queues");
    if (queues == NULL) {
        drv_json_null(j);
        return;
    }
    drv_json_array_begin(j);
    while (*p != '\0') {
        comma = strchr(p, ',');
        if (comma == NULL)
            comma = p + strlen(p);
        drv_json_str(j, p, (size_t)(comma - p));
        p = *comma ? comma + 1 : comma;
    }
    drv_json_array_end(j);
}

void
drv_queue_workers_json(struct drv_json *j, const struct drv_queue_workers *ws,
                       int64_t now_ms)
{
    const struct drv_queue_worker *w;
    size_t i;

    drv_json_object_begin(j);
    drv_json_member_int(j, "stale_after_ms", DRV_QUEUE_WORKER_STALE_MS, 0);
    drv_json_key(j, "workers");
    drv_json_array_begin(j);
    for (i = 0; i < ws->n; i++) {
        w = &ws->w[i];
        drv_json_object_begin(j);
        drv_json_member_bytes(j, "id", w->id, w->id ? strlen(w->id) : 0);
        drv_json_member_bytes(j, "host", w->host,
                              w->host ? strlen(w->host) : 0);
        drv_json_member_int(j, "pid", w->pid, 1);
        queue_list(j, w->queues);
        drv_json_member_int(j, "busy", w->busy, 1);
        drv_json_member_int(j, "started_at", w->started_ms, 1);
        drv_json_member_int(j, "beat_at", w->beat_ms, 1);
        drv_json_member_strz(j, "state",
                             w->beat_ms < 0 ? "unknown"
                             : drv_queue_worker_stale(w, now_ms) ? "stale"
                                                                 : "ok");
        drv_json_object_end(j);
    }
    drv_json_array_end(j);
    drv_json_object_end(j);
}

static const char *const result_names[5] = {
    "status", "result", "error", "attempts", "finished_at",
};

void
drv_queue_result_json(struct drv_json *j, const struct drv_job *r)
{
    if (r == NULL) {
        drv_json_null(j);
        return;
    }
    drv_json_object_begin(j);
    summary_json(j, r, result_names);
    fields_json(j, r);
    drv_json_object_end(j);
}

void
drv__queue_json_job_begin(struct drv_json *j, const char *queue,
                          const char *id, int found)
{
    drv_json_object_begin(j);
    drv_json_member_strz(j, "queue", queue);
    drv_json_member_strz(j, "id", id);
    drv_json_member_bool(j, "found", found);
}

void
drv_queue_lookup_json(struct drv_json *j, const char *queue, const char *id,
                      const struct drv_queue_lookup *l)
{
    drv__queue_json_job_begin(j, queue, id, l->result != NULL ||
                                                l->where != DRV_QUEUE_NOWHERE);
    drv_json_key(j, "result");
    drv_queue_result_json(j, l->result);
    drv_json_member_strz(j, "where", drv_queue_where_name(l->where));
    drv_json_key(j, "job");
    if (l->job != NULL) {
        drv_json_object_begin(j);
        drv_queue_job_json(j, l->job);
        drv_json_object_end(j);
    } else {
        drv_json_null(j);
    }
    drv_json_member_int(j, "due_at", l->where == DRV_QUEUE_DELAYED
                                         ? l->due_ms : -1, 1);
    drv_json_member_strz(j, "consumer", l->where == DRV_QUEUE_RUNNING
                                            ? l->consumer : NULL);
    drv_json_member_int(j, "deliveries", l->where == DRV_QUEUE_RUNNING
                                             ? l->deliveries : -1, 1);
    drv_json_member_bool(j, "scan_incomplete", l->scan_incomplete);
    drv_json_object_end(j);
}
