/*
 * chand_slotmap.c - the slot map and its JSON form (see chand_slotmap.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "chand_alloc.h"
#include "chand_slotmap.h"

static int group_index(slot_map_t *m, const char *g)
{
    for (size_t i = 0; i < m->ngroups; i++)
        if (!strcmp(m->group[i], g))
            return (int)i;
    if (m->ngroups == SM_MAX_GROUPS)
        return -1;
    snprintf(m->group[m->ngroups], sizeof m->group[0], "%s", g);
    return (int)m->ngroups++;
}

void slotmap_all(slot_map_t *m, const char *group)
{
    memset(m, 0, sizeof *m);
    group_index(m, group);
}

static bool group_ok(const char *g)
{
    size_t n = strlen(g);
    return n > 0 && n <= SM_GROUP_MAX;
}

/* One [lo, hi, "group"] triple. */
static bool triple(json_object *a, uint32_t *lo, uint32_t *hi, const char **g)
{
    if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 3)
        return false;
    json_object *l = json_object_array_get_idx(a, 0), *h = json_object_array_get_idx(a, 1);
    json_object *n = json_object_array_get_idx(a, 2);
    if (!json_object_is_type(l, json_type_int) || !json_object_is_type(h, json_type_int) ||
        !json_object_is_type(n, json_type_string))
        return false;
    int64_t lv = json_object_get_int64(l), hv = json_object_get_int64(h);
    if (lv < 0 || hv < lv || hv >= CHAN_SLOTS)
        return false;
    *lo = (uint32_t)lv;
    *hi = (uint32_t)hv;
    *g = json_object_get_string(n);
    return group_ok(*g);
}

int slotmap_parse(slot_map_t *m, const char *json, size_t len, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    if (tok)
        json_tokener_free(tok);
    int rc = -1;
    json_object *ranges = o ? json_object_object_get(o, "ranges") : NULL;
    if (!ranges || !json_object_is_type(ranges, json_type_array)) {
        snprintf(err, errlen, "not a slot map (no \"ranges\" array)");
        goto out;
    }
    uint32_t next = 0;
    for (size_t i = 0; i < json_object_array_length(ranges); i++) {
        uint32_t lo, hi;
        const char *g;
        if (!triple(json_object_array_get_idx(ranges, i), &lo, &hi, &g) || lo != next) {
            snprintf(err, errlen, "range %zu is not [lo, hi, \"group\"] following slot %u", i,
                     next);
            goto out;
        }
        int gi = group_index(m, g);
        if (gi < 0) {
            snprintf(err, errlen, "more than %d groups", SM_MAX_GROUPS);
            goto out;
        }
        memset(m->owner + lo, gi, hi - lo + 1);
        next = hi + 1;
    }
    if (next != CHAN_SLOTS) {
        snprintf(err, errlen, "the ranges end at slot %u, not %u", next, CHAN_SLOTS);
        goto out;
    }
    json_object *mv = json_object_object_get(o, "moving");
    if (mv) {
        const char *g;
        if (!triple(mv, &m->mlo, &m->mhi, &g)) {
            snprintf(err, errlen, "\"moving\" is not [lo, hi, \"group\"]");
            goto out;
        }
        for (uint32_t s = m->mlo; s <= m->mhi; s++) {
            if (m->owner[s] != m->owner[m->mlo]) {
                snprintf(err, errlen, "the moving slots are not of one group");
                goto out;
            }
        }
        int gi = group_index(m, g);
        if (gi < 0 || (uint8_t)gi == m->owner[m->mlo]) {
            snprintf(err, errlen, "\"moving\" names no other group");
            goto out;
        }
        m->moving = true;
        m->mto = (uint8_t)gi;
    }
    rc = 0;
out:
    if (o)
        json_object_put(o);
    return rc;
}

bool slotmap_next_range(const slot_map_t *m, uint32_t *slot, uint32_t *lo, uint32_t *hi,
                        const char **group)
{
    if (*slot >= CHAN_SLOTS)
        return false;
    uint32_t s = *slot;
    *lo = s;
    while (s + 1 < CHAN_SLOTS && m->owner[s + 1] == m->owner[*lo])
        s++;
    *hi = s;
    *group = m->group[m->owner[*lo]];
    *slot = s + 1;
    return true;
}

static json_object *triple_json(uint32_t lo, uint32_t hi, const char *g)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, json_object_new_int64(lo));
    json_object_array_add(a, json_object_new_int64(hi));
    json_object_array_add(a, json_object_new_string(g));
    return a;
}

char *slotmap_format(const slot_map_t *m)
{
    json_object *o = json_object_new_object();
    json_object *ranges = json_object_new_array();
    uint32_t slot = 0, lo, hi;
    const char *g;
    while (slotmap_next_range(m, &slot, &lo, &hi, &g))
        json_object_array_add(ranges, triple_json(lo, hi, g));
    json_object_object_add(o, "ranges", ranges);
    if (m->moving)
        json_object_object_add(o, "moving", triple_json(m->mlo, m->mhi, m->group[m->mto]));
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

const char *slotmap_owner(const slot_map_t *m, uint32_t slot)
{
    return m->group[m->owner[slot % CHAN_SLOTS]];
}

bool slotmap_moving(const slot_map_t *m, uint32_t slot)
{
    return m->moving && slot >= m->mlo && slot <= m->mhi;
}

const char *slotmap_moving_to(const slot_map_t *m)
{
    return m->moving ? m->group[m->mto] : NULL;
}

int slotmap_start_move(slot_map_t *m, uint32_t lo, uint32_t hi, const char *group, char *err,
                       size_t errlen)
{
    if (m->moving) {
        snprintf(err, errlen, "slots %u-%u are moving to group %s already: one move at a time",
                 m->mlo, m->mhi, m->group[m->mto]);
        return -1;
    }
    if (lo > hi || hi >= CHAN_SLOTS) {
        snprintf(err, errlen, "slots %u-%u: slots are 0 to %u", lo, hi, CHAN_SLOTS - 1);
        return -1;
    }
    if (!group_ok(group)) {
        snprintf(err, errlen, "no group name");
        return -1;
    }
    for (uint32_t s = lo; s <= hi; s++) {
        if (m->owner[s] != m->owner[lo]) {
            snprintf(err, errlen, "slots %u-%u are served by more than one group (%s and %s): "
                     "move one group's run at a time", lo, hi, m->group[m->owner[lo]],
                     m->group[m->owner[s]]);
            return -1;
        }
    }
    if (!strcmp(m->group[m->owner[lo]], group)) {
        snprintf(err, errlen, "slots %u-%u are group %s's already", lo, hi, group);
        return -1;
    }
    int gi = group_index(m, group);
    if (gi < 0) {
        snprintf(err, errlen, "more than %d groups", SM_MAX_GROUPS);
        return -1;
    }
    m->moving = true;
    m->mlo = lo;
    m->mhi = hi;
    m->mto = (uint8_t)gi;
    return 0;
}

void slotmap_end_move(slot_map_t *m)
{
    if (!m->moving)
        return;
    memset(m->owner + m->mlo, m->mto, m->mhi - m->mlo + 1);
    m->moving = false;
}
