/* Unit tests: the MQTT client (src/mqtt/mqtt.c) against a real broker.
 *
 * Each broker is /usr/sbin/mosquitto started by the test as a child, on a
 * free loopback port, with a config written into the test's own temporary
 * folder. Every broker started is stopped at the end, also when a test
 * fails (group teardown and atexit), and the kernel kills it should this
 * process die first (PR_SET_PDEATHSIG). The real clients mosquitto_pub and
 * mosquitto_sub check that what we send and receive is plain MQTT.
 *
 * No assertion depends on how fast anything runs: waits are for
 * conditions, with a generous cap that fails the test. A subscription is
 * known to be in place when a message sent after it comes back ("sync"
 * topics, which the recorders count apart).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mqtt/mqtt.h"

extern char **environ;

#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#define WAIT_CAP_MS 20000 /* the longest any condition may take before the test fails */

static char tmpdir[128];
static int main_port; /* the anonymous broker most tests share */
static char main_server[64];

/* ---- brokers ------------------------------------------------------------------ */

typedef struct broker {
    pid_t pid;
    int port;
    char log[256];
} broker;

static broker brokers[16]; /* every broker started and not yet stopped */

/* A port nothing listens on now: bind port 0, read it back, close. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(unsigned ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  %s", line);
    fclose(f);
}

/* Starts mosquitto on port with `extra` config lines; waits until it
 * accepts connections. Returns its slot in brokers[]. */
static broker *broker_start(int port, const char *extra)
{
    broker *b = NULL;
    for (size_t i = 0; i < sizeof brokers / sizeof brokers[0] && !b; i++)
        if (brokers[i].pid == 0)
            b = &brokers[i];
    assert_non_null(b);
    char conf[256];
    snprintf(conf, sizeof conf, "%s/broker-%d.conf", tmpdir, port);
    snprintf(b->log, sizeof b->log, "%s/broker-%d.log", tmpdir, port);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    /* `user root`: run as root, mosquitto would otherwise switch to the
     * mosquitto user, which cannot read our temporary folder. */
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s%s", port,
            getuid() == 0 ? "user root\n" : "", extra ? extra : "");
    fclose(f);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != parent)
            _exit(127);
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(MOSQUITTO_BIN, "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    b->port = port;
    for (int i = 0; i < WAIT_CAP_MS / 10; i++) {
        if (port_accepts(port))
            return b;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            b->pid = 0;
            dump_file(b->log);
            fail_msg("mosquitto on port %d exited during start-up (log above)", port);
        }
        sleep_ms(10);
    }
    dump_file(b->log);
    fail_msg("mosquitto on port %d did not accept connections", port);
    return NULL;
}

/* SIGTERM (or SIGKILL: a crash, for the reconnect tests) and reap. */
static void broker_stop_sig(broker *b, int sig)
{
    if (!b || b->pid <= 0)
        return;
    kill(b->pid, SIGCONT); /* a stopped broker cannot act on SIGTERM */
    kill(b->pid, sig);
    int status;
    for (int i = 0; i < 500; i++) {
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            b->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &status, 0);
    b->pid = 0;
}

static void broker_stop(broker *b) { broker_stop_sig(b, SIGTERM); }

static void stop_all_brokers(void)
{
    for (size_t i = 0; i < sizeof brokers / sizeof brokers[0]; i++)
        broker_stop_sig(&brokers[i], SIGKILL);
}

/* Runs a command (PATH searched); stdout to out_path when given. Returns
 * its exit status, or -1 if it could not run or died of a signal. */
static int run_cmd(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* ---- recording what a client receives ----------------------------------------- */

typedef struct got {
    char *topic;
    unsigned char *data;
    size_t len;
} got;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    got items[1000]; /* messages on other topics, in arrival order */
    size_t n;
    size_t syncs;    /* messages on topics ending in "/sync" */
} recorder;

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    inferd__cond_init(&r->cv);
}

static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].topic);
        free(r->items[i].data);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static void rec_fn(void *ctx, const char *topic, const void *payload, size_t len)
{
    recorder *r = ctx;
    pthread_mutex_lock(&r->mu);
    size_t tl = strlen(topic);
    if (tl >= 5 && strcmp(topic + tl - 5, "/sync") == 0) {
        r->syncs++;
    } else if (r->n < sizeof r->items / sizeof r->items[0]) {
        got *g = &r->items[r->n++];
        g->topic = strdup(topic);
        g->data = malloc(len ? len : 1);
        memcpy(g->data, payload, len);
        g->len = len;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits until the recorder holds n messages (fails the test after the cap). */
static void rec_wait(recorder *r, size_t n)
{
    pthread_mutex_lock(&r->mu);
    struct timespec until = inferd__abs_us(inferd__now_us() + WAIT_CAP_MS * 1000ull);
    while (r->n < n && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT) {
    }
    size_t have = r->n;
    pthread_mutex_unlock(&r->mu);
    if (have < n)
        fail_msg("got %zu messages, want %zu", have, n);
}

static size_t rec_count(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Proves the subscriptions of the client that owns r are in place: `via`
 * publishes on sync_topic (which that client subscribed to after its other
 * topics) until one comes back. */
static size_t sync_sub(mqtt_client *via, recorder *r, const char *sync_topic)
{
    pthread_mutex_lock(&r->mu);
    size_t before = r->syncs;
    pthread_mutex_unlock(&r->mu);
    for (size_t sent = 1; sent <= WAIT_CAP_MS / 50; sent++) {
        assert_int_equal(mqtt_client_publish(via, sync_topic, "s", 1, 0, false, NULL), INFERD_OK);
        pthread_mutex_lock(&r->mu);
        struct timespec until = inferd__abs_us(inferd__now_us() + 50000);
        while (r->syncs == before && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT) {
        }
        bool done = r->syncs > before;
        pthread_mutex_unlock(&r->mu);
        if (done)
            return sent; /* how many it published */
    }
    fail_msg("no message on %s came back: the subscription was not made", sync_topic);
    return 0;
}

/* ---- clients -------------------------------------------------------------------- */

static mqtt_client *client(const char *server, const char *name, int protocol)
{
    mqtt_options o = {.server = server, .name = name, .protocol = protocol,
                      .reconnect_min_ms = 50, .reconnect_max_ms = 400};
    mqtt_client *c = NULL;
    inferd_error err = {0};
    if (mqtt_client_new(&o, &c, &err) != INFERD_OK)
        fail_msg("mqtt_client_new(%s): %s", server, err.message);
    return c;
}

static void wait_connected(mqtt_client *c)
{
    inferd_error err = {0};
    if (mqtt_client_wait_connected(c, WAIT_CAP_MS, &err) != INFERD_OK)
        fail_msg("%s", err.message);
}

/* Polls the stats until cond holds (an expression over `s`). */
#define WAIT_STATS(c, cond)                                                                    \
    do {                                                                                       \
        mqtt_stats s;                                                                          \
        int tries_ = 0;                                                                        \
        for (;; tries_++) {                                                                    \
            mqtt_client_stats((c), &s);                                                        \
            if (cond)                                                                          \
                break;                                                                         \
            if (tries_ > WAIT_CAP_MS / 10)                                                     \
                fail_msg("stats never met '%s' (connected %d, connects %llu, disconnects "    \
                         "%llu, queued %zu, published %llu, last_error '%s')",                 \
                         #cond, s.connected, (unsigned long long)s.connects,                   \
                         (unsigned long long)s.disconnects, s.queued,                          \
                         (unsigned long long)s.published, s.last_error);                       \
            sleep_ms(10);                                                                      \
        }                                                                                      \
    } while (0)

/* stats.received counts every message handed to the callback, just before
 * the call: once no more arrive it equals what the recorder saw. */
static size_t rec_total(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n + r->syncs;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void expect_received(mqtt_client *c, recorder *r)
{
    WAIT_STATS(c, s.received == rec_total(r));
}

static void subscribe(mqtt_client *c, const char *topic, int qos, recorder *r)
{
    inferd_error err = {0};
    if (mqtt_client_subscribe(c, topic, qos, rec_fn, r, &err) != INFERD_OK)
        fail_msg("subscribe %s: %s", topic, err.message);
}

static void publish(mqtt_client *c, const char *topic, const void *data, size_t len, int qos,
                    bool retain)
{
    inferd_error err = {0};
    if (mqtt_client_publish(c, topic, data, len, qos, retain, &err) != INFERD_OK)
        fail_msg("publish %s: %s", topic, err.message);
}

static void publish_str(mqtt_client *c, const char *topic, const char *s, int qos)
{
    publish(c, topic, s, strlen(s), qos, false);
}

/* ---- setup -------------------------------------------------------------------- */

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/inferd-mqtt-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    atexit(stop_all_brokers);
    main_port = free_port();
    broker_start(main_port, NULL);
    snprintf(main_server, sizeof main_server, "tcp://127.0.0.1:%d", main_port);
    return 0;
}

static int group_teardown(void **state)
{
    stop_all_brokers();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests: options ----------------------------------------------------------- */

static void test_bad_options(void **state)
{
    static const struct {
        const char *server, *needle;
    } bad[] = {
        {"ws://h:80", "scheme 'ws' is not supported"},
        {"wss://h:80", "scheme 'wss' is not supported"},
        {"tcp://:", "has no host"},
        {"tcp://host:99999", "port '99999' is not a number from 1 to 65535"},
        {"tcp://host:0", "port '0'"},
        {"tcp://host:12ab", "port '12ab'"},
        {"tcp://host:", "port ''"},
        {"tcp://host/x", "unexpected '/x' after the host"},
        {"tcp://[::1", "no ']'"},
        {"localhost:1883", "has no scheme"},
        {"", "MQTT server is empty"},
        {NULL, "MQTT server is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mqtt_options o = {.server = bad[i].server};
        mqtt_client *c = (mqtt_client *)&o; /* must be reset to NULL */
        inferd_error err = {0};
        assert_int_equal(mqtt_client_new(&o, &c, &err), INFERD_EINVAL);
        assert_null(c);
        assert_contains(err.message, bad[i].needle);
        if (bad[i].server && *bad[i].server)
            assert_contains(err.message, bad[i].server);
    }

    static const struct {
        mqtt_options o;
        const char *needle;
    } bad_opts[] = {
        {{.server = "tcp://h", .protocol = 3}, "protocol 3 is not supported"},
        {{.server = "tcp://h", .reconnect_min_ms = 500, .reconnect_max_ms = 100},
         "reconnect_min_ms 500 is more than reconnect_max_ms 100"},
        {{.server = "tcp://h", .max_queued = 70000}, "max_queued 70000"},
        {{.server = "tcp://h", .keepalive_s = 2}, "keepalive_s 2"},
        {{.server = "tcp://h", .password = "p"}, "a password needs a username"},
        {{.server = "tcp://h", .client_id = ""}, "client_id must be"},
    };
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        mqtt_client *c = NULL;
        inferd_error err = {0};
        assert_int_equal(mqtt_client_new(&bad_opts[i].o, &c, &err), INFERD_EINVAL);
        assert_null(c);
        assert_contains(err.message, bad_opts[i].needle);
        assert_contains(err.message, "tcp://h:1883");
    }

    /* Defaults applied to the server string. */
    static const struct {
        const char *in, *out;
    } good[] = {
        {"mqtt://localhost", "tcp://localhost:1883"},
        {"TCP://127.0.0.1:1884", "tcp://127.0.0.1:1884"},
        {"tcp://[::1]:1885", "tcp://[::1]:1885"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mqtt_client *c = client(good[i].in, "defaults", 0);
        assert_string_equal(mqtt_client_server(c), good[i].out);
        mqtt_client_free(c);
    }

    /* Bad topics, QoS and callbacks are refused before anything is queued. */
    mqtt_client *c = client(main_server, "bad args", 0);
    inferd_error err = {0};
    assert_int_equal(mqtt_client_publish(c, "a/+/b", "x", 1, 0, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "'a/+/b' is not a valid topic to publish to");
    assert_int_equal(mqtt_client_publish(c, "a/#", "x", 1, 0, false, &err), INFERD_EINVAL);
    assert_int_equal(mqtt_client_publish(c, "", "x", 1, 0, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "empty topic");
    assert_int_equal(mqtt_client_publish(c, "a", "x", 1, 3, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "qos 3 is not 0, 1 or 2");
    assert_int_equal(mqtt_client_publish(c, "a", NULL, 4, 0, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "no payload");
    assert_int_equal(mqtt_client_publish(c, "a", "x", (size_t)300 << 20, 0, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "more than one MQTT message can carry");
    recorder *r = calloc(1, sizeof *r);
    rec_init(r);
    assert_int_equal(mqtt_client_subscribe(c, "a/#/b", 0, rec_fn, r, &err), INFERD_EINVAL);
    assert_contains(err.message, "'a/#/b' is not a valid topic filter");
    assert_int_equal(mqtt_client_subscribe(c, "a+", 0, rec_fn, r, &err), INFERD_EINVAL);
    assert_int_equal(mqtt_client_subscribe(c, "a", -1, rec_fn, r, &err), INFERD_EINVAL);
    assert_contains(err.message, "qos -1");
    assert_int_equal(mqtt_client_subscribe(c, "a", 0, NULL, NULL, &err), INFERD_EINVAL);
    mqtt_stats st;
    mqtt_client_stats(c, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.dropped, 0);
    mqtt_client_free(c);
    rec_free(r);
    free(r);
}

/* ---- tests: messages through the broker ----------------------------------------- */

static void round_trip(int protocol)
{
    char base[64], filter[80], sync_topic[80];
    snprintf(base, sizeof base, "it/rt%d", protocol);
    snprintf(filter, sizeof filter, "%s/data/#", base);
    snprintf(sync_topic, sizeof sync_topic, "%s/sync", base);
    static recorder r;
    rec_init(&r);
    mqtt_client *sub = client(main_server, "round trip sub", protocol);
    mqtt_client *pub = client(main_server, "round trip pub", protocol);
    subscribe(sub, filter, 1, &r);
    subscribe(sub, sync_topic, 0, &r);
    wait_connected(sub);
    wait_connected(pub);
    size_t syncs_sent = sync_sub(pub, &r, sync_topic);

    /* Text, binary with NULs, empty, and 1 MiB. */
    enum { N = 4, BIG = 1 << 20 };
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)(255 - i); /* ends in a NUL, has one */
    unsigned char *big = malloc(BIG);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1664525u + 1013904223u;
        big[i] = (unsigned char)(x >> 24);
    }
    const struct {
        const void *data;
        size_t len;
    } want[N] = {{"hello, broker", 13}, {bin, sizeof bin}, {"", 0}, {big, BIG}};
    for (int i = 0; i < N; i++) {
        char topic[96];
        snprintf(topic, sizeof topic, "%s/data/%d", base, i);
        publish(pub, topic, want[i].data, want[i].len, 1, false);
    }
    rec_wait(&r, N);
    for (int i = 0; i < N; i++) {
        char topic[96];
        snprintf(topic, sizeof topic, "%s/data/%d", base, i);
        const got *g = NULL;
        for (size_t j = 0; j < r.n; j++)
            if (strcmp(r.items[j].topic, topic) == 0)
                g = &r.items[j];
        if (!g)
            fail_msg("nothing came on %s", topic);
        assert_int_equal(g->len, want[i].len);
        if (want[i].len)
            assert_memory_equal(g->data, want[i].data, want[i].len);
    }
    WAIT_STATS(pub, s.queued == 0);
    mqtt_stats ps, ss;
    mqtt_client_stats(pub, &ps);
    assert_int_equal(ps.published, N + syncs_sent);
    assert_int_equal(ps.dropped, 0);
    assert_int_equal(rec_count(&r), N);
    expect_received(sub, &r);
    mqtt_client_stats(sub, &ss);
    assert_int_equal(ss.connects, 1);
    assert_int_equal(ss.disconnects, 0);
    assert_true(ss.connected);
    mqtt_client_free(pub);
    mqtt_client_free(sub);
    free(big);
    rec_free(&r);
}

static void test_round_trip_v5(void **state) { round_trip(5); }
static void test_round_trip_v311(void **state) { round_trip(4); }

/* mosquitto_pub, a real client, reaches our subscriber: text and binary. */
static void test_from_mosquitto_pub(void **state)
{
    static recorder r;
    rec_init(&r);
    mqtt_client *c = client(main_server, "from mosquitto_pub", 0);
    wait_connected(c); /* subscribing while connected: sent at once */
    subscribe(c, "it/ext/in", 1, &r);
    subscribe(c, "it/ext/sync", 0, &r);
    sync_sub(c, &r, "it/ext/sync");

    char port[16], bin_path[256];
    snprintf(port, sizeof port, "%d", main_port);
    snprintf(bin_path, sizeof bin_path, "%s/payload.bin", tmpdir);
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7); /* NULs at 0 and every 256/gcd steps */
    FILE *f = fopen(bin_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bin, 1, sizeof bin, f), sizeof bin);
    fclose(f);
    char *text_argv[] = {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                         "it/ext/in", "-m", "hello from mosquitto_pub", NULL};
    assert_int_equal(run_cmd(text_argv, NULL), 0);
    char *bin_argv[] = {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                        "it/ext/in", "-f", bin_path, NULL};
    assert_int_equal(run_cmd(bin_argv, NULL), 0);
    rec_wait(&r, 2);
    assert_string_equal(r.items[0].topic, "it/ext/in");
    assert_int_equal(r.items[0].len, strlen("hello from mosquitto_pub"));
    assert_memory_equal(r.items[0].data, "hello from mosquitto_pub", r.items[0].len);
    assert_int_equal(r.items[1].len, sizeof bin);
    assert_memory_equal(r.items[1].data, bin, sizeof bin);
    expect_received(c, &r);
    mqtt_client_free(c);
    rec_free(&r);
}

/* Our publishes reach mosquitto_sub -C n. mosquitto_sub first makes a
 * persistent session (-c, -E: exit once subscribed), so the broker keeps
 * our QoS 1 messages for it whatever the timing. */
static void test_to_mosquitto_sub(void **state)
{
    char port[16], out_path[256], id[64];
    snprintf(port, sizeof port, "%d", main_port);
    snprintf(out_path, sizeof out_path, "%s/sub.out", tmpdir);
    snprintf(id, sizeof id, "inferd-test-sub-%ld", (long)getpid());
    char *make_session[] = {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", id, "-c", "-q",
                            "1", "-t", "it/ext/out", "-E", NULL};
    assert_int_equal(run_cmd(make_session, NULL), 0);

    mqtt_client *c = client(main_server, "to mosquitto_sub", 0);
    publish_str(c, "it/ext/out", "first", 1);
    publish_str(c, "it/ext/out", "second message", 1);
    publish_str(c, "it/ext/out", "third", 2);
    WAIT_STATS(c, s.published == 3 && s.queued == 0);

    char *receive[] = {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", id, "-c", "-q", "1",
                       "-t", "it/ext/out", "-C", "3", "-W", "20", "-v", NULL};
    assert_int_equal(run_cmd(receive, out_path), 0);
    size_t len;
    char *out = read_file(out_path, &len);
    assert_string_equal(out, "it/ext/out first\nit/ext/out second message\nit/ext/out third\n");
    free(out);
    mqtt_client_free(c);
}

/* QoS 0, 1 and 2: every message arrives once. */
static void test_qos_levels(void **state)
{
    enum { PER_QOS = 100 };
    static recorder r;
    rec_init(&r);
    mqtt_client *sub = client(main_server, "qos sub", 0);
    mqtt_client *pub = client(main_server, "qos pub", 0);
    subscribe(sub, "it/qos/+/data", 2, &r);
    subscribe(sub, "it/qos/sync", 0, &r);
    wait_connected(pub);
    size_t syncs = sync_sub(pub, &r, "it/qos/sync");
    for (int q = 0; q <= 2; q++) {
        for (int i = 0; i < PER_QOS; i++) {
            char topic[32], payload[32];
            snprintf(topic, sizeof topic, "it/qos/%d/data", q);
            snprintf(payload, sizeof payload, "%d:%d", q, i);
            publish_str(pub, topic, payload, q);
        }
    }
    rec_wait(&r, 3 * PER_QOS);
    int seen[3][PER_QOS] = {{0}};
    for (size_t j = 0; j < r.n; j++) {
        int q = -1, i = -1;
        char *p = strndup((const char *)r.items[j].data, r.items[j].len);
        assert_int_equal(sscanf(p, "%d:%d", &q, &i), 2);
        free(p);
        assert_true(q >= 0 && q <= 2 && i >= 0 && i < PER_QOS);
        char want_topic[32];
        snprintf(want_topic, sizeof want_topic, "it/qos/%d/data", q);
        assert_string_equal(r.items[j].topic, want_topic);
        seen[q][i]++;
    }
    for (int q = 0; q <= 2; q++)
        for (int i = 0; i < PER_QOS; i++)
            if (seen[q][i] != 1)
                fail_msg("qos %d message %d arrived %d times", q, i, seen[q][i]);
    WAIT_STATS(pub, s.queued == 0);
    mqtt_stats ps;
    mqtt_client_stats(pub, &ps);
    assert_int_equal(ps.published, 3 * PER_QOS + syncs);
    expect_received(sub, &r);
    mqtt_client_free(pub);
    mqtt_client_free(sub);
    rec_free(&r);
}

/* A retained message reaches a client that subscribes later; an empty
 * retained message clears it. */
static void test_retained(void **state)
{
    static recorder r1, r2;
    rec_init(&r1);
    rec_init(&r2);
    mqtt_client *pub = client(main_server, "retain pub", 0);
    publish(pub, "it/ret/x", "kept", 4, 1, true);
    publish(pub, "it/ret/y", "not kept", 8, 1, false);
    WAIT_STATS(pub, s.published == 2);

    mqtt_client *late = client(main_server, "retain late", 0);
    subscribe(late, "it/ret/+", 1, &r1);
    subscribe(late, "it/ret/sync", 0, &r1);
    sync_sub(pub, &r1, "it/ret/sync");
    /* The broker sends retained messages when the subscription is made,
     * before the sync message that came after it. */
    assert_int_equal(rec_count(&r1), 1);
    assert_string_equal(r1.items[0].topic, "it/ret/x");
    assert_int_equal(r1.items[0].len, 4);
    assert_memory_equal(r1.items[0].data, "kept", 4);
    mqtt_stats ls;
    mqtt_client_stats(late, &ls);

    publish(pub, "it/ret/x", "", 0, 1, true); /* clears the retained message */
    rec_wait(&r1, 2);                         /* the live subscriber sees the empty one */
    assert_int_equal(r1.items[1].len, 0);
    WAIT_STATS(pub, s.queued == 0);
    mqtt_client *later = client(main_server, "retain later", 0);
    subscribe(later, "it/ret/+", 1, &r2);
    subscribe(later, "it/ret/sync", 0, &r2);
    sync_sub(pub, &r2, "it/ret/sync");
    assert_int_equal(rec_count(&r2), 0);
    mqtt_client_free(later);
    mqtt_client_free(late);
    mqtt_client_free(pub);
    rec_free(&r1);
    rec_free(&r2);
}

/* MQTT 5 shared subscription: two clients in group g split the messages,
 * each message delivered once in all. */
static void test_shared_subscription(void **state)
{
    enum { N = 200 };
    static recorder ra, rb;
    rec_init(&ra);
    rec_init(&rb);
    mqtt_client *a = client(main_server, "shared a", 5);
    mqtt_client *b = client(main_server, "shared b", 5);
    mqtt_client *pub = client(main_server, "shared pub", 5);
    subscribe(a, "$share/g/it/sh/data", 1, &ra);
    subscribe(a, "it/sh/a/sync", 0, &ra);
    subscribe(b, "$share/g/it/sh/data", 1, &rb);
    subscribe(b, "it/sh/b/sync", 0, &rb);
    wait_connected(pub);
    sync_sub(pub, &ra, "it/sh/a/sync");
    sync_sub(pub, &rb, "it/sh/b/sync");
    for (int i = 0; i < N; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        publish_str(pub, "it/sh/data", payload, 1);
    }
    for (int tries = 0; rec_count(&ra) + rec_count(&rb) < N; tries++) {
        if (tries > WAIT_CAP_MS / 10)
            fail_msg("shared: %zu + %zu messages, want %d", rec_count(&ra), rec_count(&rb), N);
        sleep_ms(10);
    }
    /* Anything still on its way to either would come before these. */
    sync_sub(pub, &ra, "it/sh/a/sync");
    sync_sub(pub, &rb, "it/sh/b/sync");
    int seen[N] = {0};
    recorder *rs[2] = {&ra, &rb};
    for (int k = 0; k < 2; k++) {
        for (size_t j = 0; j < rs[k]->n; j++) {
            assert_string_equal(rs[k]->items[j].topic, "it/sh/data");
            char *p = strndup((const char *)rs[k]->items[j].data, rs[k]->items[j].len);
            int i = atoi(p);
            free(p);
            assert_true(i >= 0 && i < N);
            seen[i]++;
        }
    }
    assert_int_equal(ra.n + rb.n, N);
    for (int i = 0; i < N; i++)
        if (seen[i] != 1)
            fail_msg("message %d delivered %d times", i, seen[i]);
    assert_true(ra.n > 0);
    assert_true(rb.n > 0);
    printf("shared subscription: %zu + %zu of %d messages\n", ra.n, rb.n, N);
    mqtt_client_free(pub);
    mqtt_client_free(a);
    mqtt_client_free(b);
    rec_free(&ra);
    rec_free(&rb);
}

/* mqtt_client_free right after publishing: what is queued is flushed
 * (QoS 1: acknowledged) before the client disconnects. */
static void test_free_flushes(void **state)
{
    enum { N = 200 };
    static recorder r;
    rec_init(&r);
    mqtt_client *sub = client(main_server, "flush sub", 0);
    mqtt_client *pub = client(main_server, "flush pub", 0);
    subscribe(sub, "it/flush/data", 1, &r);
    subscribe(sub, "it/flush/sync", 0, &r);
    wait_connected(pub);
    sync_sub(pub, &r, "it/flush/sync");
    for (int i = 0; i < N; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        publish_str(pub, "it/flush/data", payload, 1);
    }
    mqtt_client_free(pub);
    rec_wait(&r, N);
    for (int i = 0; i < N; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "%d", i);
        assert_int_equal(r.items[i].len, strlen(payload));
        assert_memory_equal(r.items[i].data, payload, r.items[i].len);
    }
    mqtt_client_free(sub);
    rec_free(&r);
}

/* ---- tests: connection trouble ------------------------------------------------ */

/* No broker yet: the client keeps trying and says why; once a broker
 * listens it connects and sends what waited. */
static void test_no_broker_then_broker(void **state)
{
    int port = free_port();
    char server[64];
    snprintf(server, sizeof server, "tcp://127.0.0.1:%d", port);
    mqtt_client *c = client(server, "no broker yet", 0);
    WAIT_STATS(c, s.last_error[0] != '\0');
    mqtt_stats st;
    mqtt_client_stats(c, &st);
    assert_false(st.connected);
    assert_int_equal(st.connects, 0);
    assert_contains(st.last_error, "Connection refused");
    assert_contains(st.last_error, server);
    assert_true(st.last_error_ms > 0);
    inferd_error err = {0};
    assert_int_equal(mqtt_client_wait_connected(c, 100, &err), INFERD_ETIMEOUT);
    assert_contains(err.message, "not connected after 100 ms");
    assert_contains(err.message, "Connection refused");
    for (int i = 0; i < 3; i++)
        publish_str(c, "it/nb/data", "waited", i % 3);
    mqtt_client_stats(c, &st);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.published, 0);

    broker *b = broker_start(port, NULL);
    uint64_t t0 = inferd__now_us();
    wait_connected(c);
    printf("no broker then broker: connected %.0f ms after the broker started\n",
           (double)(inferd__now_us() - t0) / 1000.0);
    WAIT_STATS(c, s.published == 3 && s.queued == 0);
    mqtt_client_stats(c, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.disconnects, 0);
    assert_int_equal(st.dropped, 0);
    mqtt_client_free(c);
    broker_stop(b);
}

/* The broker dies mid-stream and comes back on the same port: the client
 * reconnects by itself, subscribes again, and what was published while it
 * was away arrives, in order. */
static void test_broker_restart(void **state)
{
    enum { BEFORE = 20, DURING = 30 };
    int port = free_port();
    char server[64];
    snprintf(server, sizeof server, "tcp://127.0.0.1:%d", port);
    broker *b = broker_start(port, NULL);
    static recorder r;
    rec_init(&r);
    mqtt_client *c = client(server, "restart", 0);
    subscribe(c, "it/rs/data", 1, &r);
    subscribe(c, "it/rs/sync", 0, &r);
    wait_connected(c);
    sync_sub(c, &r, "it/rs/sync");
    char payload[16];
    for (int i = 0; i < BEFORE; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        publish_str(c, "it/rs/data", payload, i % 2);
    }
    rec_wait(&r, BEFORE);
    WAIT_STATS(c, s.queued == 0);

    broker_stop_sig(b, SIGKILL);
    WAIT_STATS(c, !s.connected && s.disconnects == 1);
    for (int i = BEFORE; i < BEFORE + DURING; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        publish_str(c, "it/rs/data", payload, i % 2);
    }
    mqtt_stats st;
    mqtt_client_stats(c, &st);
    assert_int_equal(st.queued, DURING);
    assert_false(st.connected);
    assert_true(st.last_error[0] != '\0');

    b = broker_start(port, NULL);
    uint64_t t0 = inferd__now_us();
    wait_connected(c);
    double reconnect_ms = (double)(inferd__now_us() - t0) / 1000.0;
    rec_wait(&r, BEFORE + DURING);
    for (int i = 0; i < BEFORE + DURING; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        assert_int_equal(r.items[i].len, strlen(payload));
        assert_memory_equal(r.items[i].data, payload, r.items[i].len);
    }
    WAIT_STATS(c, s.queued == 0);
    mqtt_client_stats(c, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.disconnects, 1);
    assert_int_equal(st.dropped, 0);
    printf("broker restart: reconnected %.0f ms after the broker came back; %d messages, %d of "
           "them queued while it was down\n",
           reconnect_ms, BEFORE + DURING, DURING);
    mqtt_client_free(c);
    broker_stop(b);
    rec_free(&r);
}

/* A full queue drops and counts: while disconnected, and while connected
 * with the broker not acknowledging (stopped with SIGSTOP). */
static void test_queue_full(void **state)
{
    enum { MAX = 10 };
    int port = free_port();
    char server[64];
    snprintf(server, sizeof server, "tcp://127.0.0.1:%d", port);
    static recorder r;
    rec_init(&r);
    mqtt_options o = {.server = server, .name = "queue full", .max_queued = MAX,
                      .reconnect_min_ms = 50, .reconnect_max_ms = 200};
    mqtt_client *c = NULL;
    assert_int_equal(mqtt_client_new(&o, &c, NULL), INFERD_OK);
    subscribe(c, "it/qf/data", 1, &r);
    char payload[16];
    for (int i = 0; i < MAX + 5; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        inferd_error err = {0};
        inferd_status st = mqtt_client_publish(c, "it/qf/data", payload, strlen(payload), 1, false, &err);
        if (i < MAX) {
            assert_int_equal(st, INFERD_OK);
        } else {
            assert_int_equal(st, INFERD_EBUSY);
            assert_contains(err.message, "10 messages wait already (max_queued) while disconnected");
            assert_contains(err.message, "to 'it/qf/data' is dropped");
        }
    }
    mqtt_stats st;
    mqtt_client_stats(c, &st);
    assert_int_equal(st.dropped, 5);
    assert_int_equal(st.queued, MAX);
    assert_false(st.connected);

    /* The queued ten arrive, in order, once a broker is there. */
    broker *b = broker_start(port, NULL);
    rec_wait(&r, MAX);
    for (int i = 0; i < MAX; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        assert_int_equal(r.items[i].len, strlen(payload));
        assert_memory_equal(r.items[i].data, payload, r.items[i].len);
    }
    WAIT_STATS(c, s.published == MAX && s.queued == 0);

    /* Connected, but nothing acknowledged: QoS 1 messages stay in flight. */
    kill(b->pid, SIGSTOP);
    for (int i = 0; i < MAX; i++)
        publish_str(c, "it/qf/stalled", "x", 1);
    inferd_error err = {0};
    assert_int_equal(mqtt_client_publish(c, "it/qf/stalled", "x", 1, 1, false, &err), INFERD_EBUSY);
    assert_contains(err.message, "10 messages wait already (max_queued); the message");
    mqtt_client_stats(c, &st);
    assert_int_equal(st.dropped, 6);
    assert_int_equal(st.queued, MAX);
    assert_true(st.connected);
    kill(b->pid, SIGCONT);
    WAIT_STATS(c, s.published == 2 * MAX && s.queued == 0);
    mqtt_client_stats(c, &st);
    assert_int_equal(st.dropped, 6);
    mqtt_client_free(c);
    broker_stop(b);
    rec_free(&r);
}

/* A broker with a password file: the right user gets in, a wrong password
 * or none is refused with the broker's reason, and the client keeps trying. */
static void test_credentials(void **state)
{
    char pwfile[256], extra[512];
    snprintf(pwfile, sizeof pwfile, "%s/passwords", tmpdir);
    char *make[] = {"mosquitto_passwd", "-b", "-c", pwfile, "inferd", "s3cret", NULL};
    assert_int_equal(run_cmd(make, NULL), 0);
    chmod(pwfile, 0600);
    int port = free_port();
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s\n", pwfile);
    broker *b = broker_start(port, extra);
    char server[64];
    snprintf(server, sizeof server, "tcp://127.0.0.1:%d", port);

    mqtt_options good = {.server = server, .name = "right password", .username = "inferd",
                         .password = "s3cret"};
    mqtt_client *c = NULL;
    assert_int_equal(mqtt_client_new(&good, &c, NULL), INFERD_OK);
    wait_connected(c);
    mqtt_client_free(c);

    static const struct {
        int protocol;
        const char *user, *password;
    } bad[] = {{5, "inferd", "wrong"}, {4, "inferd", "wrong"}, {5, NULL, NULL}, {4, "nobody", "s3cret"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mqtt_options o = {.server = server, .name = "wrong password", .protocol = bad[i].protocol,
                          .username = bad[i].user, .password = bad[i].password,
                          .reconnect_min_ms = 50, .reconnect_max_ms = 200};
        assert_int_equal(mqtt_client_new(&o, &c, NULL), INFERD_OK);
        WAIT_STATS(c, s.last_error[0] != '\0');
        mqtt_stats s;
        mqtt_client_stats(c, &s);
        assert_false(s.connected);
        assert_int_equal(s.connects, 0);
        if (!strcasestr(s.last_error, "not authori"))
            fail_msg("protocol %d: last_error '%s' does not say 'not authorised'", bad[i].protocol,
                     s.last_error);
        assert_contains(s.last_error, "refused the connection");
        inferd_error err = {0};
        assert_int_equal(mqtt_client_wait_connected(c, 50, &err), INFERD_ETIMEOUT);
        assert_contains(err.message, s.last_error);
        printf("refused (MQTT %s): %s\n", bad[i].protocol == 5 ? "5" : "3.1.1", s.last_error);
        mqtt_client_free(c);
    }
    broker_stop(b);
}

/* Free while disconnected, with messages queued and right after new: it
 * returns (nothing to flush to) and leaks nothing (the ASan run checks). */
static void test_free_disconnected(void **state)
{
    int port = free_port();
    char server[64];
    snprintf(server, sizeof server, "tcp://127.0.0.1:%d", port);
    static recorder r;
    rec_init(&r);
    mqtt_client *c = client(server, "free early", 0);
    mqtt_client_free(c); /* before any attempt has ended */

    c = client(server, "free disconnected", 0);
    subscribe(c, "it/free/data", 1, &r);
    for (int i = 0; i < 5; i++)
        publish_str(c, "it/free/data", "never sent", i % 3);
    WAIT_STATS(c, s.last_error[0] != '\0');
    uint64_t t0 = inferd__now_us();
    mqtt_client_free(c);
    printf("free while disconnected (5 queued): %.1f ms\n", (double)(inferd__now_us() - t0) / 1000.0);
    assert_int_equal(rec_count(&r), 0);
    rec_free(&r);
}

/* keep_session: the broker keeps the session (MQTT 5 session expiry) after
 * the client leaves; a real client resuming it with the same id gets the
 * QoS 1 message published meanwhile. Without the expiry interval the
 * broker would end the session on disconnect and mosquitto_sub would wait
 * in vain (-W). */
static void test_keep_session(void **state)
{
    static recorder r;
    rec_init(&r);
    char id[64], port[16], out_path[256];
    snprintf(id, sizeof id, "inferd-test-ks-%ld", (long)getpid());
    snprintf(port, sizeof port, "%d", main_port);
    snprintf(out_path, sizeof out_path, "%s/ks.out", tmpdir);
    mqtt_options o = {.server = main_server, .name = "keep session", .client_id = id,
                      .keep_session = true};
    mqtt_client *c = NULL;
    assert_int_equal(mqtt_client_new(&o, &c, NULL), INFERD_OK);
    subscribe(c, "it/ks/data", 1, &r);
    subscribe(c, "it/ks/sync", 0, &r);
    wait_connected(c);
    sync_sub(c, &r, "it/ks/sync");
    mqtt_client_free(c);

    mqtt_client *pub = client(main_server, "keep session pub", 0);
    publish_str(pub, "it/ks/data", "while away", 1);
    WAIT_STATS(pub, s.published == 1);
    mqtt_client_free(pub);

    char *resume[] = {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "5", "-i", id, "-c",
                      "-x", "60", "-q", "1", "-t", "it/ks/data", "-C", "1", "-W", "10", NULL};
    assert_int_equal(run_cmd(resume, out_path), 0);
    size_t len;
    char *out = read_file(out_path, &len);
    assert_string_equal(out, "while away\n");
    free(out);
    assert_int_equal(rec_count(&r), 0);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_round_trip_v5),
        cmocka_unit_test(test_round_trip_v311),
        cmocka_unit_test(test_from_mosquitto_pub),
        cmocka_unit_test(test_to_mosquitto_sub),
        cmocka_unit_test(test_qos_levels),
        cmocka_unit_test(test_retained),
        cmocka_unit_test(test_shared_subscription),
        cmocka_unit_test(test_free_flushes),
        cmocka_unit_test(test_no_broker_then_broker),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_free_disconnected),
        cmocka_unit_test(test_keep_session),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
