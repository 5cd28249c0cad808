/* lexer.c: splits a statement into tokens, each with its line and column.
 *
 * Identifiers are [A-Za-z_][A-Za-z0-9_]* (keywords are words the parser
 * recognises, case-insensitively), `backquoted` names may hold anything
 * (`` is a backquote), 'single' and "double" quoted texts are both strings
 * (a doubled quote or \' \" \\ \n \t \r escape; any other backslash is kept
 * as written, so LIKE patterns keep their \% and \_), integers are int64,
 * numbers with a '.' or an exponent are doubles, and comments run from --
 * to the end of the line or between / * and * /. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/ast.h"

inferd_status sql_error_at(inferd_error *err, inferd_status code, int line, int col,
                           const char *fmt, ...)
{
    char msg[INFERD_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return inferd_error_set(err, code, "at line %d, column %d: %s", line, col, msg);
}

inferd_status sql_oom(inferd_error *err)
{
    return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

void sql_tokens_free(token *toks, size_t n)
{
    if (!toks)
        return;
    for (size_t i = 0; i < n; i++)
        free(toks[i].text);
    free(toks);
}

/* The scanner's cursor: a byte offset and the line/column it is at. */
typedef struct scanner {
    const char *src;
    size_t pos;
    int line, col;
} scanner;

static void advance(scanner *s)
{
    unsigned char c = (unsigned char)s->src[s->pos];
    if (c == '\0')
        return;
    s->pos++;
    if (c == '\n') {
        s->line++;
        s->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        /* continuation bytes of a UTF-8 character do not move the column;
         * the lead byte already did */
        s->col++;
    }
}

static char peek(const scanner *s, size_t ahead)
{
    /* never reads past the NUL: each earlier byte was checked non-NUL */
    for (size_t i = 0; i < ahead; i++)
        if (s->src[s->pos + i] == '\0')
            return '\0';
    return s->src[s->pos + ahead];
}

static bool is_ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

/* Skips whitespace and comments; an unterminated block comment is an error. */
static inferd_status skip_space(scanner *s, inferd_error *err)
{
    for (;;) {
        char c = peek(s, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            advance(s);
        } else if (c == '-' && peek(s, 1) == '-') {
            while (peek(s, 0) != '\0' && peek(s, 0) != '\n')
                advance(s);
        } else if (c == '/' && peek(s, 1) == '*') {
            int line = s->line, col = s->col;
            advance(s);
            advance(s);
            while (!(peek(s, 0) == '*' && peek(s, 1) == '/')) {
                if (peek(s, 0) == '\0')
                    return sql_error_at(err, INFERD_EINVAL, line, col, "unterminated comment");
                advance(s);
            }
            advance(s);
            advance(s);
        } else {
            return INFERD_OK;
        }
    }
}

/* A growing byte buffer for decoded strings. */
typedef struct sbuf {
    char *data;
    size_t len, cap;
} sbuf;

static bool sbuf_put(sbuf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return true;
}

/* A quoted string or backquoted name; the cursor is on the opening quote. */
static inferd_status scan_quoted(scanner *s, token *t, inferd_error *err)
{
    char q = peek(s, 0);
    bool escapes = q != '`';
    sbuf b = {0};
    if (!sbuf_put(&b, '\0')) /* an empty string still gets a buffer */
        return sql_oom(err);
    b.len = 0;
    advance(s);
    for (;;) {
        char c = peek(s, 0);
        if (c == '\0') {
            free(b.data);
            return sql_error_at(err, INFERD_EINVAL, t->line, t->col,
                                q == '`' ? "unterminated quoted name" : "unterminated string");
        }
        if (c == q) {
            advance(s);
            if (peek(s, 0) != q)
                break;
        } else if (c == '\\' && escapes) {
            char e = peek(s, 1);
            char out = 0;
            switch (e) {
            case '\'': out = '\''; break;
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case 'n': out = '\n'; break;
            case 't': out = '\t'; break;
            case 'r': out = '\r'; break;
            default: break;
            }
            if (out) {
                advance(s);
                c = out;
            }
        }
        if (!sbuf_put(&b, c)) {
            free(b.data);
            return sql_oom(err);
        }
        advance(s);
    }
    if (q == '`' && b.len == 0) {
        free(b.data);
        return sql_error_at(err, INFERD_EINVAL, t->line, t->col, "empty quoted name");
    }
    t->kind = q == '`' ? T_QIDENT : T_STRING;
    t->text = b.data;
    t->text_len = b.len;
    return INFERD_OK;
}

static inferd_status scan_number(scanner *s, token *t, inferd_error *err)
{
    size_t start = s->pos;
    bool real = false;
    while (is_digit(peek(s, 0)))
        advance(s);
    if (peek(s, 0) == '.' && is_digit(peek(s, 1))) {
        real = true;
        advance(s);
        while (is_digit(peek(s, 0)))
            advance(s);
    }
    if (peek(s, 0) == 'e' || peek(s, 0) == 'E') {
        size_t k = 1;
        if (peek(s, 1) == '+' || peek(s, 1) == '-')
            k = 2;
        if (is_digit(peek(s, k))) {
            real = true;
            while (k--)
                advance(s);
            while (is_digit(peek(s, 0)))
                advance(s);
        }
    }
    size_t len = s->pos - start;
    if (is_ident_char(peek(s, 0)) || peek(s, 0) == '.') {
        while (is_ident_char(peek(s, 0)) || peek(s, 0) == '.')
            advance(s);
        return sql_error_at(err, INFERD_EINVAL, t->line, t->col, "invalid number '%.*s'",
                            (int)(s->pos - start), s->src + start);
    }
    char buf[64];
    if (len >= sizeof buf)
        return sql_error_at(err, INFERD_ERANGE, t->line, t->col, "number out of range: %.40s...",
                            s->src + start);
    memcpy(buf, s->src + start, len);
    buf[len] = '\0';
    errno = 0;
    if (real) {
        t->kind = T_DOUBLE;
        t->d = strtod(buf, NULL);
        if (errno == ERANGE && isinf(t->d))
            return sql_error_at(err, INFERD_ERANGE, t->line, t->col, "number out of range: %s",
                                buf);
    } else {
        t->kind = T_INT;
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return sql_error_at(err, INFERD_ERANGE, t->line, t->col, "integer out of range: %s",
                                buf);
        t->i = v;
    }
    return INFERD_OK;
}

/* Operators and punctuation; false when c starts none. */
static bool scan_symbol(scanner *s, token *t)
{
    char c = peek(s, 0), d = peek(s, 1);
    tok_kind k;
    int width = 1;
    switch (c) {
    case '(': k = T_LPAREN; break;
    case ')': k = T_RPAREN; break;
    case '[': k = T_LBRACKET; break;
    case ']': k = T_RBRACKET; break;
    case ',': k = T_COMMA; break;
    case ';': k = T_SEMI; break;
    case '.': k = T_DOT; break;
    case '*': k = T_STAR; break;
    case '+': k = T_PLUS; break;
    case '/': k = T_SLASH; break;
    case '%': k = T_PERCENT; break;
    case '-':
        k = d == '>' ? T_ARROW : T_MINUS;
        width = d == '>' ? 2 : 1;
        break;
    case '=':
        k = d == '=' ? T_EQEQ : T_EQ;
        width = d == '=' ? 2 : 1;
        break;
    case '!':
        if (d != '=')
            return false;
        k = T_NE;
        width = 2;
        break;
    case '<':
        if (d == '=' || d == '>') {
            k = d == '=' ? T_LE : T_NE;
            width = 2;
        } else {
            k = T_LT;
        }
        break;
    case '>':
        k = d == '=' ? T_GE : T_GT;
        width = d == '=' ? 2 : 1;
        break;
    default: return false;
    }
    t->kind = k;
    while (width--)
        advance(s);
    return true;
}

inferd_status sql_lex(const char *src, token **out, size_t *n, inferd_error *err)
{
    *out = NULL;
    *n = 0;
    scanner s = {src, 0, 1, 1};
    token *toks = NULL;
    size_t len = 0, cap = 0;
    inferd_status st = INFERD_OK;
    for (;;) {
        if ((st = skip_space(&s, err)) != INFERD_OK)
            break;
        if (len == cap) {
            size_t c2 = cap ? cap * 2 : 32;
            token *t2 = realloc(toks, c2 * sizeof *t2);
            if (!t2) {
                st = sql_oom(err);
                break;
            }
            toks = t2;
            cap = c2;
        }
        token *t = &toks[len];
        *t = (token){.start = s.pos, .line = s.line, .col = s.col};
        char c = peek(&s, 0);
        if (c == '\0') {
            t->kind = T_EOF;
            len++;
            break;
        }
        if (is_ident_start(c)) {
            while (is_ident_char(peek(&s, 0)))
                advance(&s);
            t->kind = T_IDENT;
            t->text_len = s.pos - t->start;
            t->text = strndup(src + t->start, t->text_len);
            if (!t->text)
                st = sql_oom(err);
        } else if (c == '\'' || c == '"' || c == '`') {
            st = scan_quoted(&s, t, err);
        } else if (is_digit(c)) {
            st = scan_number(&s, t, err);
        } else if (!scan_symbol(&s, t)) {
            unsigned char u = (unsigned char)c;
            if (u >= 0x20 && u < 0x7F)
                st = sql_error_at(err, INFERD_EINVAL, t->line, t->col, "unexpected character '%c'",
                                  c);
            else
                st = sql_error_at(err, INFERD_EINVAL, t->line, t->col,
                                  "unexpected character (byte 0x%02X)", u);
        }
        if (st != INFERD_OK) {
            free(t->text);
            break;
        }
        t->len = s.pos - t->start;
        len++;
    }
    if (st != INFERD_OK) {
        sql_tokens_free(toks, len);
        return st;
    }
    *out = toks;
    *n = len;
    return INFERD_OK;
}
