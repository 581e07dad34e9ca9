/*
 * fz_pb.c - protobuf-c messages compared field by field through their
 * descriptors (see fz_pb.h).
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fz_pb.h"

static bool differ(char *why, size_t n, const char *path, const char *name, const char *what)
{
    snprintf(why, n, "%s.%s: %s", path, name, what);
    return false;
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static bool equal_at(const char *path, const ProtobufCFieldDescriptor *f, const void *x,
                     const void *y, char *why, size_t n);

static bool msg_equal(const char *path, const ProtobufCMessage *a, const ProtobufCMessage *b,
                      char *why, size_t n);

/* One value of field f, at x in one message and y in the other. */
static bool equal_at(const char *path, const ProtobufCFieldDescriptor *f, const void *x,
                     const void *y, char *why, size_t n)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)x, *t = *(char *const *)y;
        if (!s != !t || (s && strcmp(s, t) != 0))
            return differ(why, n, path, f->name, "strings differ");
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = x, *t = y;
        if (s->len != t->len)
            return differ(why, n, path, f->name, "byte lengths differ");
        if (!s->data != !t->data)
            return differ(why, n, path, f->name, "one data pointer is NULL");
        if (s->len && memcmp(s->data, t->data, s->len) != 0)
            return differ(why, n, path, f->name, "bytes differ");
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(ProtobufCMessage *const *)x;
        const ProtobufCMessage *t = *(ProtobufCMessage *const *)y;
        if (!s != !t)
            return differ(why, n, path, f->name, "one submessage is missing");
        if (!s)
            return true;
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, f->name);
        return msg_equal(sub, s, t, why, n);
    }
    default:
        if (memcmp(x, y, type_size(f->type)) != 0)
            return differ(why, n, path, f->name, "values differ");
        return true;
    }
}

static bool field_equal(const char *path, const ProtobufCFieldDescriptor *f,
                        const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t n)
{
    const char *pa = (const char *)a, *pb = (const char *)b;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t ca, cb;
        memcpy(&ca, pa + f->quantifier_offset, sizeof ca);
        memcpy(&cb, pb + f->quantifier_offset, sizeof cb);
        if (ca != cb)
            return differ(why, n, path, f->name, "oneof cases differ");
        return ca != f->id || equal_at(path, f, pa + f->offset, pb + f->offset, why, n);
    }
    switch (f->label) {
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            protobuf_c_boolean ha, hb;
            memcpy(&ha, pa + f->quantifier_offset, sizeof ha);
            memcpy(&hb, pb + f->quantifier_offset, sizeof hb);
            if (!ha != !hb)
                return differ(why, n, path, f->name, "presence differs");
            if (!ha)
                return true;
        }
        return equal_at(path, f, pa + f->offset, pb + f->offset, why, n);
    case PROTOBUF_C_LABEL_REPEATED: {
        size_t na, nb;
        memcpy(&na, pa + f->quantifier_offset, sizeof na);
        memcpy(&nb, pb + f->quantifier_offset, sizeof nb);
        if (na != nb)
            return differ(why, n, path, f->name, "repeated counts differ");
        const char *xa = *(char *const *)(pa + f->offset), *xb = *(char *const *)(pb + f->offset);
        size_t sz = type_size(f->type);
        for (size_t i = 0; i < na; i++)
            if (!equal_at(path, f, xa + i * sz, xb + i * sz, why, n))
                return false;
        return true;
    }
    default:   /* required, or proto3's implicit presence */
        return equal_at(path, f, pa + f->offset, pb + f->offset, why, n);
    }
}

static bool unknown_equal(const char *path, const ProtobufCMessage *a,
                          const ProtobufCMessage *b, char *why, size_t n)
{
    if (a->n_unknown_fields != b->n_unknown_fields)
        return differ(why, n, path, "<unknown>", "counts differ");
    for (unsigned i = 0; i < a->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *x = &a->unknown_fields[i], *y = &b->unknown_fields[i];
        if (x->tag != y->tag || x->wire_type != y->wire_type || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len) != 0))
            return differ(why, n, path, "<unknown>", "fields differ");
    }
    return true;
}

static bool msg_equal(const char *path, const ProtobufCMessage *a, const ProtobufCMessage *b,
                      char *why, size_t n)
{
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d != b->descriptor)
        return differ(why, n, path, "<descriptor>", "different message types");
    for (unsigned i = 0; i < d->n_fields; i++)
        if (!field_equal(path, &d->fields[i], a, b, why, n))
            return false;
    return unknown_equal(path, a, b, why, n);
}

bool fz_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t whysize)
{
    return msg_equal(a->descriptor->short_name, a, b, why, whysize);
}

bool fz_pb_has_field0(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *p = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        size_t n = 1;
        ProtobufCMessage *const *subs = (ProtobufCMessage *const *)(p + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            memcpy(&n, p + f->quantifier_offset, sizeof n);
            subs = *(ProtobufCMessage *const *const *)(p + f->offset);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t c;
            memcpy(&c, p + f->quantifier_offset, sizeof c);
            if (c != f->id)
                continue;
        }
        for (size_t k = 0; k < n; k++)
            if (subs[k] && fz_pb_has_field0(subs[k]))
                return true;
    }
    return false;
}
