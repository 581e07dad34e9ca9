/*
 * chand_acl.c - the --acl-file: parsing, checking secrets, matching
 * channel names against a user's patterns (see chand_acl.h).
 *
 * The file is input like any other: every line is checked, and the first
 * bad one stops the load with its line number and what is wrong with it.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "chand_acl.h"
#include "chand_alloc.h"

#define LINE_MAX_BYTES 8192
/* The file is read whole into memory, users and patterns: bound it. */
#define FILE_MAX_BYTES (16u << 20)
#define PATTERN_MAX 255
#define HASH_SCHEME "pbkdf2-sha256$"

bool chand_acl_user_valid(const char *name, size_t len)
{
    if (len == 0 || len > ACL_USER_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '@' || ch == '-'))
            return false;
    }
    return true;
}

bool chand_acl_glob(const char *p, const uint8_t *s, size_t n)
{
    /* the classic two-pointer match: on a mismatch after a '*', let that
     * '*' take one more byte and go on from there; O(len(p) * n) at worst,
     * both at most 255 */
    size_t pn = strlen(p), pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < n) {
        if (pi < pn && (p[pi] == '?' || (uint8_t)p[pi] == s[si])) {
            pi++;
            si++;
        } else if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

bool chand_acl_allows(const acl_user_t *u, unsigned ops, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < u->nrules; i++)
        if ((u->rules[i].ops & ops) && chand_acl_glob(u->rules[i].pattern, name, len))
            return true;
    return false;
}

const acl_user_t *chand_acl_find(const acl_t *a, const char *name)
{
    for (size_t i = 0; i < a->nusers; i++)
        if (!strcmp(a->users[i].name, name))
            return &a->users[i];
    return NULL;
}

const acl_user_t *chand_acl_check(const acl_t *a, const char *name, const uint8_t *secret,
                                  size_t len)
{
    const acl_user_t *u = chand_acl_find(a, name);
    /* no such user: spend what a check of a real one costs, on a record
     * that matches nothing */
    static const uint8_t dummy_salt[16];
    uint32_t iter = u ? u->iter : a->nusers ? a->users[0].iter : ACL_ITER_DEFAULT;
    const uint8_t *salt = u ? u->salt : dummy_salt;
    size_t salt_len = u ? u->salt_len : sizeof dummy_salt;
    uint8_t out[ACL_HASH_LEN];
    if (!secret)
        secret = (const uint8_t *)"";
    if (!PKCS5_PBKDF2_HMAC((const char *)secret, (int)len, salt, (int)salt_len, (int)iter,
                           EVP_sha256(), sizeof out, out))
        return NULL;
    if (!u || CRYPTO_memcmp(out, u->hash, sizeof out) != 0)
        return NULL;
    return u;
}

/* ---- loading ---- */

struct parse {
    const char *path;
    unsigned line;
    char *err;
    size_t errsize;
};

static void __attribute__((format(printf, 2, 3))) bad(struct parse *p, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->line)
        snprintf(p->err, p->errsize, "%s:%u: %s", p->path, p->line, why);
    else
        snprintf(p->err, p->errsize, "%s: %s", p->path, why);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* n hex digits into n/2 bytes; -1 if one is not a hex digit. */
static int unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* pbkdf2-sha256$ITER$SALT$HASH */
static int parse_hash(struct parse *p, const char *s, acl_user_t *u)
{
    static const char form[] = "the secret's hash must be " HASH_SCHEME
                               "ITERATIONS$SALT$HASH (see `chan acl hash`)";
    if (strncmp(s, HASH_SCHEME, strlen(HASH_SCHEME)) != 0) {
        bad(p, "%s", form);
        return -1;
    }
    s += strlen(HASH_SCHEME);
    unsigned long long iter = 0;
    size_t digits = 0;
    for (; s[digits] >= '0' && s[digits] <= '9' && digits < 8; digits++)
        iter = iter * 10 + (unsigned)(s[digits] - '0');
    if (!digits || s[digits] != '$') {
        bad(p, "%s", form);
        return -1;
    }
    if (iter < ACL_ITER_MIN || iter > ACL_ITER_MAX) {
        bad(p, "%llu iterations: between %u and %u, please", iter, ACL_ITER_MIN, ACL_ITER_MAX);
        return -1;
    }
    const char *salt = s + digits + 1;
    const char *dollar = strchr(salt, '$');
    if (!dollar) {
        bad(p, "%s", form);
        return -1;
    }
    size_t salt_hex = (size_t)(dollar - salt);
    const char *hash = dollar + 1;
    if (salt_hex < 16 || salt_hex > 2 * ACL_SALT_MAX || salt_hex % 2 ||
        unhex(salt, salt_hex, u->salt) < 0) {
        bad(p, "the salt must be 8 to %d bytes in hex", ACL_SALT_MAX);
        return -1;
    }
    if (strlen(hash) != 2 * ACL_HASH_LEN || unhex(hash, 2 * ACL_HASH_LEN, u->hash) < 0) {
        bad(p, "the hash must be %d bytes (SHA-256) in hex", ACL_HASH_LEN);
        return -1;
    }
    u->iter = (uint32_t)iter;
    u->salt_len = salt_hex / 2;
    return 0;
}

static const struct {
    const char *word;
    unsigned bits;
} op_words[] = {
    { "send", ACL_SEND }, { "recv", ACL_RECV }, { "make", ACL_MAKE },
    { "close", ACL_CLOSE }, { "delete", ACL_DELETE }, { "all", ACL_CHAN_OPS },
    { "stat", ACL_STAT }, { "list", ACL_LIST }, { "cluster", ACL_CLUSTER },
};

static int parse_ops(struct parse *p, char *s, unsigned *out)
{
    unsigned bits = 0;
    for (char *save = NULL, *w = strtok_r(s, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < sizeof op_words / sizeof op_words[0] && strcmp(w, op_words[i].word))
            i++;
        if (i == sizeof op_words / sizeof op_words[0]) {
            bad(p, "'%.40s' is not send, recv, make, close, delete, all, stat, list or cluster",
                w);
            return -1;
        }
        bits |= op_words[i].bits;
    }
    if (!bits) {
        bad(p, "allow: no operations");
        return -1;
    }
    *out = bits;
    return 0;
}

static bool pattern_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PATTERN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._:/-*?", c)))
            return false;
    }
    return true;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static void add_rule(acl_user_t *u, unsigned ops, const char *pattern)
{
    if (u->nrules == u->caprules) {
        u->caprules = u->caprules ? u->caprules * 2 : 4;
        u->rules = xrealloc(u->rules, u->caprules * sizeof *u->rules);
    }
    u->rules[u->nrules].ops = ops;
    u->rules[u->nrules++].pattern = dup_str(pattern);
}

/* A line of at most LINE_MAX_BYTES has at most half as many words. */
#define WORDS_MAX (LINE_MAX_BYTES / 2 + 1)

static int parse_line(struct parse *p, acl_t *a, char *line)
{
    static char *w[WORDS_MAX];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t", &save); t && n < WORDS_MAX;
         t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    if (n == 0 || w[0][0] == '#')
        return 0;   /* blank, or a comment */
    if (!strcmp(w[0], "user")) {
        if (n != 3) {
            bad(p, "user: expected `user NAME HASH`");
            return -1;
        }
        if (!chand_acl_user_valid(w[1], strlen(w[1]))) {
            bad(p, "user name '%.70s': 1 to %d of [A-Za-z0-9._@-]", w[1], ACL_USER_MAX);
            return -1;
        }
        if (chand_acl_find(a, w[1])) {
            bad(p, "user %s is defined twice", w[1]);
            return -1;
        }
        acl_user_t u = { 0 };
        if (parse_hash(p, w[2], &u) < 0)
            return -1;
        u.name = dup_str(w[1]);
        if (a->nusers == a->capusers) {
            a->capusers = a->capusers ? a->capusers * 2 : 8;
            a->users = xrealloc(a->users, a->capusers * sizeof *a->users);
        }
        a->users[a->nusers++] = u;
        return 0;
    }
    if (!strcmp(w[0], "allow")) {
        if (n < 3) {
            bad(p, "allow: expected `allow USER OPERATIONS [PATTERN...]`");
            return -1;
        }
        acl_user_t *u = (acl_user_t *)chand_acl_find(a, w[1]);
        if (!u) {
            bad(p, "allow: no user %.70s (its `user` line must come first)", w[1]);
            return -1;
        }
        unsigned ops;
        if (parse_ops(p, w[2], &ops) < 0)
            return -1;
        unsigned chan_ops = ops & ACL_CHAN_OPS;
        if (chan_ops && n == 3) {
            bad(p, "allow: send, recv, make, close and delete need channel name patterns");
            return -1;
        }
        if (!chan_ops && n > 3) {
            bad(p, "pattern '%.70s': stat, list and cluster take none", w[3]);
            return -1;
        }
        for (size_t i = 3; i < n; i++) {
            if (!pattern_valid(w[i])) {
                bad(p, "pattern '%.70s': 1 to %d of [A-Za-z0-9._:/-] and the wildcards * and ?",
                    w[i], PATTERN_MAX);
                return -1;
            }
        }
        u->flags |= ops & ~(unsigned)ACL_CHAN_OPS;
        for (size_t i = 3; i < n; i++)
            add_rule(u, chan_ops, w[i]);
        return 0;
    }
    bad(p, "'%.40s': a line is `user ...`, `allow ...` or a # comment", w[0]);
    return -1;
}

acl_t *chand_acl_load(const char *path, char *err, size_t errsize)
{
    struct parse p = { .path = path, .err = err, .errsize = errsize };
    FILE *f = fopen(path, "r");
    if (!f) {
        bad(&p, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > (off_t)FILE_MAX_BYTES) {
        bad(&p, "over %u bytes", FILE_MAX_BYTES);
        fclose(f);
        return NULL;
    }
    acl_t *a = xcalloc(1, sizeof *a);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        p.line++;
        if (len > LINE_MAX_BYTES) {
            bad(&p, "a line longer than %d bytes", LINE_MAX_BYTES);
            rc = -1;
            break;
        }
        if (strlen(line) != (size_t)len) {
            bad(&p, "a NUL byte");
            rc = -1;
            break;
        }
        line[strcspn(line, "\r\n")] = 0;
        rc = parse_line(&p, a, line);
    }
    if (rc == 0 && ferror(f)) {
        p.line = 0;
        bad(&p, "read error: %s", strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && a->nusers == 0) {
        p.line = 0;
        bad(&p, "no users: the file defines none (`user NAME HASH`)");
        rc = -1;
    }
    if (rc < 0) {
        chand_acl_free(a);
        return NULL;
    }
    return a;
}

void chand_acl_free(acl_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nusers; i++) {
        acl_user_t *u = &a->users[i];
        for (size_t j = 0; j < u->nrules; j++)
            free(u->rules[j].pattern);
        free(u->rules);
        free(u->name);
        OPENSSL_cleanse(u->hash, sizeof u->hash);
    }
    free(a->users);
    free(a);
}
