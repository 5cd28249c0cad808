/* Unit tests: the bounded blocking queue (core/queue.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include "core/queue.h"

static void fifo_and_bounds(void **state)
{
    assert_null(inferd_queue_new(0));
    inferd_queue *q = inferd_queue_new(3);
    assert_int_equal(inferd_queue_capacity(q), 3);
    int v[4] = {1, 2, 3, 4};
    for (int i = 0; i < 3; i++)
        assert_int_equal(inferd_queue_push(q, &v[i], 0), INFERD_OK);
    assert_int_equal(inferd_queue_push(q, &v[3], 0), INFERD_ETIMEOUT);
    assert_int_equal(inferd_queue_push(q, &v[3], 20), INFERD_ETIMEOUT);
    assert_int_equal(inferd_queue_length(q), 3);
    void *item;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(inferd_queue_pop(q, &item, 0), INFERD_OK);
        assert_ptr_equal(item, &v[i]);
    }
    assert_int_equal(inferd_queue_pop(q, &item, 20), INFERD_ETIMEOUT);
    /* Wrap around the ring. */
    for (int round = 0; round < 5; round++) {
        assert_int_equal(inferd_queue_push(q, &v[round % 4], 0), INFERD_OK);
        assert_int_equal(inferd_queue_pop(q, &item, 0), INFERD_OK);
        assert_ptr_equal(item, &v[round % 4]);
    }
    inferd_queue_free(q, NULL);
}

/* Bounded in bytes: sizes add up to max_bytes at most; one item larger
 * than the bound still fits an empty queue; popping makes room again. */
static void bytes_bound(void **state)
{
    inferd_queue *q = inferd_queue_new_bytes(10, 100);
    int v[4] = {1, 2, 3, 4};
    assert_int_equal(inferd_queue_push_sized(q, &v[0], 60, 0), INFERD_OK);
    assert_int_equal(inferd_queue_push_sized(q, &v[1], 40, 0), INFERD_OK);
    assert_int_equal(inferd_queue_bytes(q), 100);
    assert_int_equal(inferd_queue_push_sized(q, &v[2], 1, 0), INFERD_ETIMEOUT);
    assert_int_equal(inferd_queue_push_sized(q, &v[2], 1, 20), INFERD_ETIMEOUT);
    void *item;
    assert_int_equal(inferd_queue_pop(q, &item, 0), INFERD_OK);
    assert_ptr_equal(item, &v[0]);
    assert_int_equal(inferd_queue_bytes(q), 40);
    assert_int_equal(inferd_queue_push_sized(q, &v[2], 60, 0), INFERD_OK);
    assert_int_equal(inferd_queue_push_sized(q, &v[3], 500, 0), INFERD_ETIMEOUT);
    assert_int_equal(inferd_queue_pop(q, &item, 0), INFERD_OK);
    assert_int_equal(inferd_queue_pop(q, &item, 0), INFERD_OK);
    assert_ptr_equal(item, &v[2]);
    assert_int_equal(inferd_queue_bytes(q), 0);
    assert_int_equal(inferd_queue_push_sized(q, &v[3], 500, 0), INFERD_OK);
    assert_int_equal(inferd_queue_push_sized(q, &v[0], 1, 0), INFERD_ETIMEOUT);
    inferd_queue_free(q, NULL);
    /* A queue without a byte bound ignores sizes. */
    q = inferd_queue_new(2);
    assert_int_equal(inferd_queue_push_sized(q, &v[0], 1u << 30, 0), INFERD_OK);
    assert_int_equal(inferd_queue_push_sized(q, &v[1], 1u << 30, 0), INFERD_OK);
    assert_int_equal(inferd_queue_bytes(q), 0);
    inferd_queue_free(q, NULL);
}

static int dropped;
static void count_drop(void *item) { dropped += *(int *)item; }

static void close_drains_then_refuses(void **state)
{
    inferd_queue *q = inferd_queue_new(4);
    int a = 1, b = 10;
    inferd_queue_push(q, &a, 0);
    inferd_queue_push(q, &b, 0);
    inferd_queue_close(q);
    assert_int_equal(inferd_queue_push(q, &a, -1), INFERD_ESTATE);
    void *item;
    assert_int_equal(inferd_queue_pop(q, &item, -1), INFERD_OK);
    assert_ptr_equal(item, &a);
    inferd_queue_free(q, count_drop); /* b is still in it */
    assert_int_equal(dropped, 10);
}

typedef struct pair {
    inferd_queue *q;
    long sum;
} pair;

static void *producer(void *arg)
{
    pair *p = arg;
    for (long i = 1; i <= 10000; i++)
        assert_int_equal(inferd_queue_push(p->q, (void *)i, -1), INFERD_OK);
    return NULL;
}

static void *consumer(void *arg)
{
    pair *p = arg;
    void *item;
    while (inferd_queue_pop(p->q, &item, -1) == INFERD_OK)
        p->sum += (long)item;
    return NULL;
}

static void threads_lose_nothing(void **state)
{
    inferd_queue *q = inferd_queue_new(2); /* small: producers block often */
    pair prod[3] = {{q, 0}, {q, 0}, {q, 0}}, cons[2] = {{q, 0}, {q, 0}};
    pthread_t tp[3], tc[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&tc[i], NULL, consumer, &cons[i]);
    for (int i = 0; i < 3; i++)
        pthread_create(&tp[i], NULL, producer, &prod[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(tp[i], NULL);
    inferd_queue_close(q); /* wakes the consumers once it is empty */
    for (int i = 0; i < 2; i++)
        pthread_join(tc[i], NULL);
    assert_int_equal(cons[0].sum + cons[1].sum, 3L * 10000 * 10001 / 2);
    inferd_queue_free(q, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_and_bounds),
        cmocka_unit_test(bytes_bound),
        cmocka_unit_test(close_drains_then_refuses),
        cmocka_unit_test(threads_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
