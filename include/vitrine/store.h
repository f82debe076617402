/*
 * vitrine: Redis storage of profiles.
 *
 * Keys of one profile share a hash tag so that one Lua script can update them atomically,
 * also in a Redis Cluster (prefix "vt:" by default):
 *
 *   vt:{<id>}:p      hash: counters, first/last seen, user id, gender log-odds and evidence,
 *                    revenue, and "o:<source tag>:<partition>" = last applied Kafka offset
 *   vt:{<id>}:cat    sorted set: category -> decayed log-score
 *   vt:{<id>}:brand  sorted set: brand -> decayed log-score
 *   vt:{<id>}:tier   sorted set: price tier -> decayed log-score
 *   vt:{<id>}:rv     sorted set: recently viewed product -> last view time (ms)
 *   vt:{<id>}:cart   hash: product -> quantity
 *   vt:{<id>}:buy    sorted set: purchased product -> last purchase time (ms)
 *
 * Every write refreshes the TTL of all keys of the profile. Ids from outside are passed
 * as binary-safe arguments, never formatted into a command string.
 *
 * A struct vt_store is one connection. It is not thread-safe: the ingest thread owns one,
 * and each HTTP worker thread owns one of its own.
 */
#ifndef VITRINE_STORE_H
#define VITRINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/config.h"
#include "vitrine/profile.h"

struct vt_store;

/* Connect (with the password and database from cfg) and load the profile scripts.
 * timeout_ms bounds connecting and every command. Returns NULL with a message in err. */
struct vt_store *vt_store_connect(const struct vt_config *cfg, int64_t timeout_ms, char *err,
                                  size_t errsize);
void vt_store_free(struct vt_store *st);

/* PING. Returns 0 when Redis answered. */
int vt_store_ping(struct vt_store *st, char *err, size_t errsize);

/*
 * Batched profile updates: one pipelined round trip for the whole batch.
 *
 *   vt_store_batch_begin(st);
 *   for each delta: vt_store_batch_add(st, &delta);
 *   vt_store_batch_commit(st, applied, n, err, errsize);
 *
 * commit sends every queued script call, waits for every reply and writes into applied[i]
 * 1 when delta i changed its profile and 0 when it was a redelivery already applied.
 * Returns 0 when Redis acknowledged all of them, -1 otherwise (connection lost, timeout,
 * script error); the caller then retries the whole batch, which is safe because applying
 * a delta twice has no effect. After -1 the connection is closed and re-opened on the
 * next begin.
 */
void vt_store_batch_begin(struct vt_store *st);
void vt_store_batch_add(struct vt_store *st, const struct vt_profile_delta *delta);
int vt_store_batch_commit(struct vt_store *st, int *applied, size_t n, char *err,
                          size_t errsize);

/* Read a profile in one round trip. Affinity values are decayed to the profile's last
 * event; now_ms is used only for a profile without one. A profile that does not exist
 * gives 0 with p->exists == false. Returns -1 with a message when Redis failed. */
int vt_store_profile_read(struct vt_store *st, const char *id, size_t id_len, int64_t now_ms,
                          struct vt_profile *p, char *err, size_t errsize);

/* Delete every key of a profile. *deleted receives the number of keys removed. */
int vt_store_profile_delete(struct vt_store *st, const char *id, size_t id_len,
                            int64_t *deleted, char *err, size_t errsize);

#endif
