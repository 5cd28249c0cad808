/* teapot: the background plugin of the plugin seed, in C.
 *
 * A background component, teapot, with routes
 *   GET /teapot              418 "I am teapot" (the seed's handler class)
 *   GET /teapot/version      200 "T800"        (the seed's plain function)
 *   GET /teapot/temperature  200 {"temperature": N} (to watch the work)
 * and periodic work: once started, every intervalMs (1 s) the water gets one
 * degree warmer, up to 100, and the teapot says so in the log. close stops
 * the work. Its own metrics (ABI 2.3) on /metrics: the requests it answered
 * by route (a counter), the temperature (a gauge), and how long a boil()
 * step took (a histogram with its own buckets).
 *
 *   INFERD_ACTIVE_PLUGINS=teapot inferd serve
 *   curl -i localhost:8080/teapot
 */
#include <inferd/plugin.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const inferd_prop_spec props[] = {
    INFERD_PROP_UINT("intervalMs", "how often the water warms by one degree", 1000, 1, 3600000),
    INFERD_PROP_END,
};

typedef struct teapot {
    atomic_int temperature; /* written by the timer, read by requests */
    uint64_t timer, interval_ms;
} teapot;

static inferd_status text(inferd_http_response *resp, unsigned status, const char *body,
                          inferd_error *err)
{
    inferd_http_response_set_status(resp, status);
    inferd_status st = inferd_http_response_set_header(resp, "Content-Type", "text/plain", err);
    return st ? st : inferd_http_response_set_body(resp, body, strlen(body), err);
}

/* inferd_plugin_teapot_requests_total{instance="teapot",route="/teapot"} */
static void count_request(inferd_instance *self, const char *route)
{
    inferd_metric_add(self, "requests_total", (const char *[]){"route", route, NULL}, 1);
}

static inferd_status get_teapot(inferd_instance *self, const inferd_http_request *req,
                                inferd_http_response *resp, inferd_error *err)
{
    count_request(self, "/teapot");
    return text(resp, 418, "I am teapot", err);
}

static inferd_status get_version(inferd_instance *self, const inferd_http_request *req,
                                 inferd_http_response *resp, inferd_error *err)
{
    count_request(self, "/teapot/version");
    return text(resp, 200, "T800", err);
}

static inferd_status get_temperature(inferd_instance *self, const inferd_http_request *req,
                                     inferd_http_response *resp, inferd_error *err)
{
    count_request(self, "/teapot/temperature");
    teapot *t = inferd_instance_state(self);
    char body[64];
    int len = snprintf(body, sizeof body, "{\"temperature\": %d}", atomic_load(&t->temperature));
    inferd_status st = inferd_http_response_set_header(resp, "Content-Type", "application/json", err);
    return st ? st : inferd_http_response_set_body(resp, body, (size_t)len, err);
}

/* The useful job, on the host's timer thread. */
static void boil(inferd_instance *self, void *user)
{
    teapot *t = user;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int temperature = atomic_load(&t->temperature);
    if (temperature < 100)
        atomic_store(&t->temperature, ++temperature);
    if (temperature < 100)
        inferd_log_info("teapot", "I boil water, temperature: %d", temperature);
    else
        inferd_log_info("teapot", "boiling water is ready, would you care for a cup of tea?");
    inferd_metric_set(self, "temperature_celsius", NULL, temperature);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    inferd_metric_observe(self, "boil_step_seconds", NULL,
                          (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static inferd_status teapot_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    teapot *t = calloc(1, sizeof *t);
    if (!t)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    t->interval_ms = (uint64_t)inferd_props_int(p, "intervalMs");
    inferd_instance_set_state(self, t);
    /* Help texts, and buckets that suit a step of microseconds. */
    static const double step_bounds[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
    inferd_metric_describe(self, "requests_total", INFERD_METRIC_COUNTER,
                           "requests the teapot answered, by route", NULL, 0);
    inferd_metric_describe(self, "temperature_celsius", INFERD_METRIC_GAUGE,
                           "the water's temperature", NULL, 0);
    inferd_metric_describe(self, "boil_step_seconds", INFERD_METRIC_HISTOGRAM,
                           "how long one step of boiling took", step_bounds, 5);
    return INFERD_OK;
}

static inferd_status teapot_start(inferd_instance *self, inferd_error *err)
{
    teapot *t = inferd_instance_state(self);
    return inferd_timer_start(self, t->interval_ms, boil, t, &t->timer, err);
}

static void teapot_close(inferd_instance *self)
{
    teapot *t = inferd_instance_state(self);
    inferd_timer_cancel(self, t->timer); /* returns once a running boil() has */
    free(t);
}

static const inferd_route_spec routes[] = {
    {"GET", "/teapot", get_teapot},
    {"GET", "/teapot/version", get_version},
    {"GET", "/teapot/temperature", get_temperature},
    INFERD_ROUTE_END,
};

INFERD_PLUGIN("teapot", "1.0.0",
              INFERD_BACKGROUND("teapot", props, routes, teapot_init, teapot_start, teapot_close))
