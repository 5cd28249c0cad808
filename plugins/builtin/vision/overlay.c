/* overlay.c: the overlay element of the vision plugin: a frame's results
 * drawn on its picture, for people watching a camera.
 *
 * In: any buffer of the frame after the elements whose results it draws
 * (density_count, segment_defects, text_boxes, classify_topk, ctc_decode,
 * or an application's metadata/object). The picture is the frame's decoded
 * image: the oldest image among the buffer and its ancestors, the one the
 * post-processors' coordinates refer to (they map their results back
 * through every resize and crop).
 *
 * Out (port 0): a buffer derived from the input (the metadata follows)
 * whose payload is a copy of that image with, for every metadata entry of
 * the frame (or only dataSource's): metadata/points as filled dots,
 * metadata/object as boxes with their label and score, metadata/semanticseg
 * masks blended in (stretched over the frame: exact when the model saw the
 * whole frame resized), and lines of text at the top left: each producer's
 * count, its classes (metadata/class) and its text (metadata/text). Each
 * producer has its own colour. Text uses a built-in 5x7 font (upper case,
 * digits and common signs; lower case is drawn as upper case).
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const inferd_prop_spec vision_overlay_props[] = {
    INFERD_PROP_INT("lineWidth", "the boxes' line width, in pixels", 2, 1, 32),
    INFERD_PROP_INT("pointRadius", "the points' radius, in pixels", 3, 1, 64),
    INFERD_PROP_INT("textScale", "the text's size: each font pixel as N x N pixels", 2, 1, 8),
    INFERD_PROP_BOOL("labels", "draw the boxes' labels and scores, the classes and the text",
                     true),
    INFERD_PROP_BOOL("counts", "draw each producer's count (\"name: N\")", true),
    INFERD_PROP_DOUBLE("maskOpacity", "how strongly masks colour the picture (0: not drawn)",
                       0.5, 0.0, 1.0),
    INFERD_PROP_END,
};
const inferd_port_spec vision_overlay_in[] = {
    INFERD_PORT_STATIC("image/rgb", "image/bgr", "metadata/points", "metadata/object",
                       "metadata/semanticseg", "metadata/class", "metadata/text",
                       "metadata/tensor"),
    INFERD_PORT_END};
const inferd_port_spec vision_overlay_out[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr"),
                                               INFERD_PORT_END};

typedef struct overlay {
    int line, radius, scale;
    bool labels, counts;
    double mask_opacity;
    char *source;       /* owned; NULL: every producer */
} overlay;

inferd_status vision_overlay_init(inferd_instance *self, const inferd_props *p,
                                  inferd_error *err)
{
    overlay *o = calloc(1, sizeof *o);
    if (!o || !vision_data_source(p, &o->source)) {
        free(o);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    o->line = (int)inferd_props_int(p, "lineWidth");
    o->radius = (int)inferd_props_int(p, "pointRadius");
    o->scale = (int)inferd_props_int(p, "textScale");
    o->labels = inferd_props_bool(p, "labels");
    o->counts = inferd_props_bool(p, "counts");
    o->mask_opacity = inferd_props_double(p, "maskOpacity");
    inferd_instance_set_state(self, o);
    return INFERD_OK;
}

void vision_overlay_deinit(inferd_instance *self)
{
    overlay *o = inferd_instance_state(self);
    if (o)
        free(o->source);
    free(o);
}

/* ---- drawing on an rgb or bgr image ----------------------------------------------- */

typedef struct canvas {
    inferd_image *img;  /* borrowed */
    bool bgr;
} canvas;

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

/* Distinct, readable on dark and light pictures. */
static const rgb palette[] = {{255, 64, 64},  {64, 220, 64},  {64, 128, 255}, {255, 200, 0},
                              {255, 64, 255}, {0, 220, 220},  {255, 140, 0},  {160, 96, 255}};
static const rgb white = {255, 255, 255}, black = {0, 0, 0};

/* A producer's colour: the same name, the same colour, in every frame. */
static rgb colour_of(const char *producer)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = producer; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return palette[h % (sizeof palette / sizeof palette[0])];
}

static void blend(const canvas *cv, long x, long y, rgb c, double a)
{
    inferd_image *im = cv->img;
    if (x < 0 || y < 0 || x >= (long)im->width || y >= (long)im->height)
        return;
    uint8_t *px = im->data + (size_t)y * im->stride + (size_t)x * 3;
    uint8_t want[3] = {c.r, c.g, c.b};
    if (cv->bgr) {
        want[0] = c.b;
        want[2] = c.r;
    }
    for (int k = 0; k < 3; k++)
        px[k] = (uint8_t)lround(px[k] * (1.0 - a) + want[k] * a);
}

static void fill_rect(const canvas *cv, long x0, long y0, long x1, long y1, rgb c)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > (long)cv->img->width)
        x1 = cv->img->width;
    if (y1 > (long)cv->img->height)
        y1 = cv->img->height;
    for (long y = y0; y < y1; y++)
        for (long x = x0; x < x1; x++)
            blend(cv, x, y, c, 1.0);
}

/* A rectangle's outline, w pixels wide, inside [x0, x1) x [y0, y1). */
static void outline(const canvas *cv, long x0, long y0, long x1, long y1, long w, rgb c)
{
    fill_rect(cv, x0, y0, x1, y0 + w, c);
    fill_rect(cv, x0, y1 - w, x1, y1, c);
    fill_rect(cv, x0, y0, x0 + w, y1, c);
    fill_rect(cv, x1 - w, y0, x1, y1, c);
}

static void dot(const canvas *cv, double cx, double cy, int r, rgb c)
{
    for (long y = (long)floor(cy - r); y <= (long)ceil(cy + r); y++)
        for (long x = (long)floor(cx - r); x <= (long)ceil(cx + r); x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy; /* pixel centres */
            if (dx * dx + dy * dy <= (double)r * r)
                blend(cv, x, y, c, 1.0);
        }
}

/* ---- text: a 5x7 font ---------------------------------------------------------------- */

typedef struct glyph {
    char c;
    uint8_t rows[7]; /* bit 4 is the leftmost column */
} glyph;

static const glyph font[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

static const glyph *glyph_of(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == c)
            return &font[i];
    return &font[sizeof font / sizeof font[0] - 1]; /* '?' for what the font lacks */
}

/* Each glyph cell is 6 x 8 font pixels (a column and a row of space). */
#define CELL_W 6
#define CELL_H 8

/* Text on a filled background, its top-left corner at (x, y). Returns its
 * height in pixels. */
static long text(const canvas *cv, long x, long y, const char *s, int scale, rgb bg)
{
    long w = (long)strlen(s) * CELL_W * scale + scale, h = CELL_H * scale + scale;
    fill_rect(cv, x, y, x + w, y + h, bg);
    /* White on a dark background, black on a light one. */
    rgb fg = (bg.r * 299 + bg.g * 587 + bg.b * 114) / 1000 > 140 ? black : white;
    for (size_t i = 0; s[i]; i++) {
        const glyph *g = glyph_of(s[i]);
        long gx = x + scale + (long)i * CELL_W * scale, gy = y + scale;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g->rows[row] & (0x10 >> col))
                    fill_rect(cv, gx + col * scale, gy + row * scale, gx + (col + 1) * scale,
                              gy + (row + 1) * scale, fg);
    }
    return h;
}

/* ---- what each kind of result looks like ----------------------------------------------- */

static double num(const inferd_value *o, const char *key, double fallback)
{
    return inferd_value_double_or(inferd_value_object_get(o, key), fallback);
}

/* A box: {x, y, width, height} or {x0, y0, x1, y1}; false when neither. */
static bool box_of(const inferd_value *o, double *x0, double *y0, double *x1, double *y1)
{
    if (inferd_value_object_get(o, "width")) {
        *x0 = num(o, "x", NAN);
        *y0 = num(o, "y", NAN);
        *x1 = *x0 + num(o, "width", NAN);
        *y1 = *y0 + num(o, "height", NAN);
    } else {
        *x0 = num(o, "x0", NAN);
        *y0 = num(o, "y0", NAN);
        *x1 = num(o, "x1", NAN);
        *y1 = num(o, "y1", NAN);
    }
    return isfinite(*x0) && isfinite(*y0) && isfinite(*x1) && isfinite(*y1);
}

static const char *label_of(const inferd_value *o)
{
    static const char *const keys[] = {"label", "tag", "class", "text"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *s = inferd_value_string_or(inferd_value_object_get(o, keys[i]), NULL);
        if (s)
            return s;
    }
    return NULL;
}

static void draw_objects(const overlay *ov, const canvas *cv, const inferd_value *objects,
                         rgb c)
{
    for (size_t i = 0; i < inferd_value_array_len(objects); i++) {
        const inferd_value *o = inferd_value_array_get(objects, i);
        double x0, y0, x1, y1;
        if (!box_of(o, &x0, &y0, &x1, &y1))
            continue;
        long lx0 = lround(x0), ly0 = lround(y0), lx1 = lround(x1), ly1 = lround(y1);
        outline(cv, lx0, ly0, lx1, ly1, ov->line, c);
        if (!ov->labels)
            continue;
        char tag[96];
        const char *label = label_of(o);
        double score = num(o, "score", NAN);
        if (label && isfinite(score))
            snprintf(tag, sizeof tag, "%.60s %.2f", label, score);
        else if (label)
            snprintf(tag, sizeof tag, "%.60s", label);
        else if (isfinite(score))
            snprintf(tag, sizeof tag, "%.2f", score);
        else
            continue;
        long h = CELL_H * ov->scale + ov->scale;
        text(cv, lx0, ly0 - h >= 0 ? ly0 - h : ly0, tag, ov->scale, c);
    }
}

/* A mask (gray, non-zero = inside) stretched over the frame, blended in. */
static void draw_mask(const overlay *ov, const canvas *cv, const inferd_image *mask, rgb c)
{
    if (ov->mask_opacity <= 0 || mask->format != INFERD_PIXEL_GRAY8 || !mask->width ||
        !mask->height)
        return;
    const inferd_image *im = cv->img;
    for (uint32_t y = 0; y < im->height; y++) {
        const uint8_t *row = mask->data + (size_t)((uint64_t)y * mask->height / im->height) *
                                              mask->stride;
        for (uint32_t x = 0; x < im->width; x++)
            if (row[(uint64_t)x * mask->width / im->width])
                blend(cv, x, y, c, ov->mask_opacity);
    }
}

/* One entry's drawing; the lines it adds at the top left go at *y. */
static void draw_entry(const overlay *ov, const canvas *cv, const inferd_meta *m, long *y)
{
    rgb c = colour_of(m->producer);
    char line[160];
    if (m->image && strcmp(m->format, "metadata/semanticseg") == 0) {
        draw_mask(ov, cv, m->image, c);
        return;
    }
    if (!m->value)
        return;
    const inferd_value *v = m->value;
    const inferd_value *count = inferd_value_object_get(v, "count");
    if (strcmp(m->format, "metadata/points") == 0) {
        const inferd_value *pts = inferd_value_object_get(v, "points");
        for (size_t i = 0; i < inferd_value_array_len(pts); i++) {
            const inferd_value *p = inferd_value_array_get(pts, i);
            double x = num(p, "x", NAN), yy = num(p, "y", NAN);
            if (isfinite(x) && isfinite(yy))
                dot(cv, x, yy, ov->radius, c);
        }
    } else if (strcmp(m->format, "metadata/object") == 0) {
        draw_objects(ov, cv, inferd_value_object_get(v, "objects"), c);
    } else if (strcmp(m->format, "metadata/class") == 0 && ov->labels) {
        const inferd_value *best = inferd_value_array_get(inferd_value_object_get(v, "labels"), 0);
        if (best && label_of(best)) {
            snprintf(line, sizeof line, "%.40s: %.60s %.2f", m->producer, label_of(best),
                     num(best, "score", 0));
            *y += text(cv, 0, *y, line, ov->scale, c);
        }
        return;
    } else if (strcmp(m->format, "metadata/text") == 0 && ov->labels) {
        const char *t = inferd_value_string_or(inferd_value_object_get(v, "text"), NULL);
        if (t) {
            snprintf(line, sizeof line, "%.40s: %.100s", m->producer, t);
            *y += text(cv, 0, *y, line, ov->scale, c);
        }
        return;
    } else {
        return;
    }
    if (!ov->counts)
        return;
    /* A list without a count: its length. */
    double n = count ? inferd_value_double_or(count, NAN)
                     : (double)inferd_value_array_len(inferd_value_object_get(v, "objects"));
    if (isfinite(n)) {
        snprintf(line, sizeof line, "%.40s: %.0f", m->producer, n);
        *y += text(cv, 0, *y, line, ov->scale, c);
    }
}

/* The frame's picture: the oldest image of the buffer and its ancestors. */
static const inferd_image *frame_image(const inferd_buffer *b)
{
    const inferd_image *found = NULL;
    for (; b; b = inferd_buffer_parent(b))
        if (inferd_buffer_image(b))
            found = inferd_buffer_image(b);
    return found;
}

inferd_status vision_overlay_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                     size_t n, inferd_error *err)
{
    const overlay *ov = inferd_instance_state(self);
    inferd_buffer *in;
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    const inferd_image *src = frame_image(in);
    if (!src)
        return inferd_error_set(err, INFERD_ETYPE, "the frame has no decoded picture to draw on "
                                "(put image_decoder before the elements whose results overlay "
                                "draws)");
    if (src->format != INFERD_PIXEL_RGB8 && src->format != INFERD_PIXEL_BGR8)
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "overlay draws on rgb or bgr "
                                "pictures; this frame's is %s (decode it as rgb)",
                                inferd_pixel_format_name(src->format));
    inferd_image *img = NULL;
    if ((st = inferd_image_new(src->format, src->width, src->height, &img, err)) != INFERD_OK)
        return st;
    for (uint32_t y = 0; y < src->height; y++)
        memcpy(img->data + y * img->stride, src->data + y * src->stride, (size_t)src->width * 3);
    canvas cv = {img, src->format == INFERD_PIXEL_BGR8};
    long text_y = 0;
    inferd_meta m;
    for (size_t i = 0; inferd_buffer_meta_at(in, i, &m); i++)
        if (!ov->source || strcmp(m.producer, ov->source) == 0)
            draw_entry(ov, &cv, &m, &text_y);
    return vision_push_image(self, in, img, NULL, NULL, err);
}
