/* Limits of the policy compiler.
 *
 * Each bounds the work or the stack one policy can demand, far above what a
 * real policy needs; a policy over a limit is refused with an error that
 * names the limit (docs/policy-language.md, "Limits").
 */
#ifndef HVGATE_POLICY_LIMITS_H
#define HVGATE_POLICY_LIMITS_H

/* Longest token (word, string, regular expression). The longest legitimate
 * ones are include paths (PATH_MAX, 4096 in linux/limits.h) and inspect
 * regular expressions; 16 KiB leaves room for both. */
#define POLICY_TOKEN_MAX 16384

/* Deepest nesting of blocks (`tenant { ... }` inside one another). The
 * language itself needs 4 (tenant, vpn, peer, list); the parser recurses
 * once per level, so this bounds its stack. */
#define POLICY_NESTING_MAX 32

/* Longest chain of defines (or services) that refer to one another
 * (`define a2 = $a1`, `define a3 = $a2`, ...); resolution recurses once per
 * link, so this bounds its stack. */
#define POLICY_REF_DEPTH_MAX 64

#endif
