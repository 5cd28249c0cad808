/* bench/rules/scale.c: a C function plugin for bench/rules: bench_scale(x, k)
 * is x * k. Small real work (type checks, an overflow check, one new value)
 * so that the bench measures what calling a C plugin from a rule costs. */
#include "inferd/plugin.h"

/* Two ints stay an int (an overflow is an error, never a wrapped number);
 * a double on either side makes a double. */
static inferd_status scale_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                                inferd_value **result, inferd_error *err)
{
    (void)self, (void)n; /* the host checks the arity: exactly 2 */
    int64_t x, k, product;
    if (inferd_value_get_int(args[0], &x, NULL) == INFERD_OK &&
        inferd_value_get_int(args[1], &k, NULL) == INFERD_OK) {
        if (__builtin_mul_overflow(x, k, &product))
            return inferd_error_set(err, INFERD_ERANGE, "bench_scale: %lld * %lld overflows",
                                    (long long)x, (long long)k);
        *result = inferd_value_int(product);
    } else {
        double dx, dk;
        if (inferd_value_get_double(args[0], &dx, NULL) != INFERD_OK ||
            inferd_value_get_double(args[1], &dk, NULL) != INFERD_OK)
            return inferd_error_set(err, INFERD_ETYPE, "bench_scale(x, k) takes two numbers, "
                                    "got %s and %s",
                                    inferd_value_type_name(inferd_value_type_of(args[0])),
                                    inferd_value_type_name(inferd_value_type_of(args[1])));
        *result = inferd_value_double(dx * dk);
    }
    return *result ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

INFERD_PLUGIN("bench_scale", "1.0",
              INFERD_FUNCTION("bench_scale", 2, 2, NULL, NULL, scale_exec, NULL))
