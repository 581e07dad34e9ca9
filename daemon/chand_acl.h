/*
 * chand_acl.h - users and their permissions on channel names (--acl-file).
 *
 * The file (docs/PROTOCOL.md, "Users and permissions", has it in full):
 *
 *   # a comment; blank lines are ignored
 *   user alice pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX
 *   allow alice send,recv jobs.* results.?
 *   allow alice make,close,delete scratch.*
 *   allow alice stat,list
 *
 * A user's secret is kept only as PBKDF2-HMAC-SHA256 of it with a salt of
 * the user's own (`chan acl hash` makes such a line).  Permissions only
 * grant, never deny: a request is allowed if any `allow` line of its user
 * names its operation with a pattern that matches the channel.  A pattern
 * is a glob over the channel name: `*` any run of bytes (none too), `?`
 * one byte, anything else itself.
 *
 * The ACL is loaded whole or not at all: any bad line is an error naming
 * the file and the line, and the ACL in force (at start: none, and chand
 * does not start; on SIGHUP: the old one) stays.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_ACL_H
#define CHAND_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an `allow` line grants.  The first five are per channel name; the
 * rest are flags of the user, with no pattern. */
enum {
    ACL_SEND = 1 << 0,
    ACL_RECV = 1 << 1,
    ACL_MAKE = 1 << 2,      /* an Open that creates the channel */
    ACL_CLOSE = 1 << 3,
    ACL_DELETE = 1 << 4,
    ACL_CHAN_OPS = (1 << 5) - 1,
    ACL_STAT = 1 << 5,      /* Stat of the server */
    ACL_LIST = 1 << 6,      /* Stat{all}: every channel's name and counts */
    ACL_CLUSTER = 1 << 7,   /* Replicate: read the whole journal */
};

#define ACL_USER_MAX 64          /* bytes of a user name */
#define ACL_SALT_MAX 64          /* bytes of a salt */
#define ACL_HASH_LEN 32          /* SHA-256 */
#define ACL_ITER_MIN 1000
/* A Hello is checked on chand's one thread: at about 0.3 µs an iteration
 * this bounds one check to about a third of a second. */
#define ACL_ITER_MAX 1000000
#define ACL_ITER_DEFAULT 10000   /* `chan acl hash` */

typedef struct acl_rule {
    unsigned ops;                /* ACL_SEND..ACL_DELETE */
    char *pattern;
} acl_rule_t;

typedef struct acl_user {
    char *name;
    uint32_t iter;
    uint8_t salt[ACL_SALT_MAX];
    size_t salt_len;
    uint8_t hash[ACL_HASH_LEN];
    unsigned flags;              /* ACL_STAT, ACL_LIST, ACL_CLUSTER */
    acl_rule_t *rules;
    size_t nrules, caprules;
} acl_user_t;

typedef struct acl {
    acl_user_t *users;
    size_t nusers, capusers;
} acl_t;

/* chand_acl_load - read and check the whole file.  The ACL, or NULL with
 * the reason in err ("FILE:LINE: what is wrong"). */
acl_t *chand_acl_load(const char *path, char *err, size_t errsize);
void chand_acl_free(acl_t *a);

const acl_user_t *chand_acl_find(const acl_t *a, const char *name);

/* chand_acl_check - the user named, if secret is its secret; else NULL.
 * An unknown user costs as much time as a known one with a wrong secret,
 * so that the time taken does not tell which users exist. */
const acl_user_t *chand_acl_check(const acl_t *a, const char *name, const uint8_t *secret,
                                  size_t len);

/* chand_acl_allows - whether u may do one of ops (a mask of ACL_SEND..
 * ACL_DELETE) on the channel name. */
bool chand_acl_allows(const acl_user_t *u, unsigned ops, const uint8_t *name, size_t len);

/* chand_acl_glob - whether name matches pattern (NUL-terminated). */
bool chand_acl_glob(const char *pattern, const uint8_t *name, size_t len);

/* chand_acl_user_valid - 1-64 bytes of [A-Za-z0-9._@-]. */
bool chand_acl_user_valid(const char *name, size_t len);

#endif /* CHAND_ACL_H */
