/* waferprov_ate.h - the tester side of the waferprov tester link (WPTL 1.0), as a C ABI.
 *
 * libwaferprov_ate.so lets a test program (a SmarTest test method, an IG-XL DLL, a plain C
 * program) ask the provisioning host for the identities of the dies under the probe card and
 * report what it did with them. The wire protocol is docs/tester-protocol.md; the transport is a
 * ZeroMQ DEALER secured with CurveZMQ.
 *
 * Conventions
 *   - Every function returns an int status: WP_ATE_OK (0), a negative local error
 *     (WP_ATE_E_*), or a positive protocol status code the host answered with (WP_ATE_S_*,
 *     the same numbers as docs/tester-protocol.md). wp_ate_strerror() names any of them;
 *     wp_ate_last_error() gives the detailed text of the handle's last failure.
 *   - The caller owns every buffer. The library never keeps a pointer the caller passed in
 *     beyond the call, and never returns memory the caller has to free (except the handle,
 *     which wp_ate_close() frees).
 *   - No exception, signal or abort crosses this boundary. A NULL pointer where one is required
 *     is WP_ATE_E_INVALID_ARGUMENT, not a crash.
 *   - Threads: different handles are independent and may be used from different threads at
 *     once. Calls on one handle are serialized by the handle (a second thread waits), so a
 *     handle is safe to share, but requests on one handle never overlap.
 *   - Timeouts: every request waits at most config.timeout_ms for its answer, and is resent
 *     (same request, same sequence) up to config.retries times. The host answers a resent
 *     TOUCHDOWN or RESULTS exactly as it answered the first (docs/tester-protocol.md,
 *     "idempotency"), so a retry never issues or counts twice.
 *   - If the host answers NO_SESSION (it was restarted), the library opens a new session and
 *     resends the request once, transparently.
 */
#ifndef WAFERPROV_ATE_H
#define WAFERPROV_ATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
/* waferprov_ate.dll: the library's build exports the API, a program imports it. */
#if defined(WAFERPROV_ATE_BUILDING)
#define WP_ATE_EXPORT __declspec(dllexport)
#else
#define WP_ATE_EXPORT __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define WP_ATE_EXPORT __attribute__((visibility("default")))
#else
#define WP_ATE_EXPORT
#endif

#define WP_ATE_ABI_VERSION 1     /* bumped on any incompatible change of this header */
#define WP_ATE_KEY_Z85_LENGTH 40 /* a CurveZMQ key in Z85 text */
#define WP_ATE_UID_SIZE 16
#define WP_ATE_WRAPPED_KEY_SIZE 40
#define WP_ATE_MAX_CERTIFICATE 3072 /* DER bytes; the protocol's limit */
#define WP_ATE_CHAIN_ID_SIZE 32
#define WP_ATE_MAX_TEXT 256 /* protocol strings are <= 255 bytes, + NUL */
#define WP_ATE_MAX_SITES 1024
#define WP_ATE_CHALLENGE_SIZE 32         /* final test: the host's nonce */
#define WP_ATE_CHALLENGE_MESSAGE_SIZE 89 /* final test: the bytes the part signs */
#define WP_ATE_SIGNATURE_SIZE 64         /* final test: ECDSA P-256 r || s, big-endian */

/* ---- Status codes ----------------------------------------------------------------------- */
enum {
    WP_ATE_OK = 0,
    /* Local errors (negative). */
    WP_ATE_E_INVALID_ARGUMENT = -1, /* NULL pointer, bad key text, site count, duplicate site,
                                       string too long / not UTF-8 / contains NUL */
    WP_ATE_E_TIMEOUT = -2,          /* no answer within timeout_ms after every retry; the same
                                       call (same sequence) may be repeated later */
    WP_ATE_E_CONNECT = -3,          /* the endpoint could not be set up (bad address, ...) */
    WP_ATE_E_PROTOCOL = -4, /* the host's answer is malformed or does not match the request */
    WP_ATE_E_NO_MEMORY = -5,
    WP_ATE_E_IO = -6,     /* a key file could not be read or has no key in it */
    WP_ATE_E_CLOSED = -7, /* the handle's session was closed */
    WP_ATE_E_INTERNAL = -8,
    /* Statuses the host answers with (the protocol's numbers, docs/tester-protocol.md).
     * Per site / per result, and as the return value when the host refused a whole request. */
    WP_ATE_S_REISSUED = 0x01, /* per site: a retest; the die's existing identity again */
    WP_ATE_S_VERIFY = 0x02,   /* per part (final test): provisioned at sort; sign the challenge */
    WP_ATE_S_BAD_FRAME = 0x10,
    WP_ATE_S_TRUNCATED = 0x11,
    WP_ATE_S_OVERSIZED = 0x12,
    WP_ATE_S_UNKNOWN_KIND = 0x13,
    WP_ATE_S_UNSUPPORTED_VERSION = 0x14,
    WP_ATE_S_BAD_FIELD = 0x15,
    WP_ATE_S_UNEXPECTED_KIND = 0x16,
    WP_ATE_S_NOT_ADMITTED = 0x20,
    WP_ATE_S_UNKNOWN_JOB = 0x21,
    WP_ATE_S_NO_SESSION = 0x22,
    WP_ATE_S_BUSY = 0x23,
    WP_ATE_S_SHUTTING_DOWN = 0x24,
    WP_ATE_S_SEQUENCE_REUSED = 0x25,
    WP_ATE_S_QUOTA_EXHAUSTED = 0x30,
    WP_ATE_S_CONFLICT = 0x31,
    WP_ATE_S_UNKNOWN_UID = 0x32,
    WP_ATE_S_NOT_DELIVERED = 0x33,
    WP_ATE_S_DUPLICATE_RESULT = 0x34,
    WP_ATE_S_VOIDED = 0x35,
    WP_ATE_S_NO_UID = 0x36,
    WP_ATE_S_ALREADY_PROGRAMMED = 0x37,
    WP_ATE_S_NOT_ON_MAP = 0x38,
    WP_ATE_S_DELIVERY_CAP = 0x39,
    WP_ATE_S_NOT_PROVISIONED = 0x3a,    /* final test: a UID the job never provisioned */
    WP_ATE_S_SIGNATURE_MISMATCH = 0x3b, /* final test: the part's signature does not verify */
    WP_ATE_S_CHALLENGE_REFUSED = 0x3c,  /* final test: no open challenge of this session */
    WP_ATE_S_INTERNAL = 0xff
};

/* A static, NUL-terminated name and one-line meaning of any status ("QUOTA_EXHAUSTED: the
 * job's quota is used up"); "unknown status" for a number it does not know. Never NULL. */
WP_ATE_EXPORT const char* wp_ate_strerror(int status);

/* The library's version text ("0.4.0") and WP_ATE_ABI_VERSION it was built with. */
WP_ATE_EXPORT const char* wp_ate_version(void);
WP_ATE_EXPORT int wp_ate_abi_version(void);

/* Reads a CurveZMQ certificate file as written by `waferprov keygen` / `waferprov job init`
 * (the CZMQ zcert text format: `public-key = "..."` and, in a secret file, `secret-key = "..."`).
 * public_z85 and secret_z85 receive 40 characters + NUL; secret_z85 may be NULL to read only
 * the public key. WP_ATE_E_IO names the file and what is missing in wp_ate_last_error(NULL). */
WP_ATE_EXPORT int wp_ate_read_key_file(const char* path, char public_z85[41], char secret_z85[41]);

/* ---- Sessions --------------------------------------------------------------------------- */
typedef struct wp_ate wp_ate; /* opaque: one connection and its session */

typedef struct wp_ate_config {
    uint32_t struct_size;          /* set to sizeof(wp_ate_config) */
    const char* endpoint;          /* "tcp://127.0.0.1:7450" */
    const char* server_public_key; /* Z85; NULL = plain TCP (only against `serve --insecure`) */
    const char* client_public_key; /* Z85, the tester's key the job admits */
    const char* client_secret_key; /* Z85 */
    const char* tester_id;         /* printable ASCII, the id the job binds to the key */
    const char* job_id;
    const char* node_name; /* for the host's log; NULL = this machine's host name */
    int timeout_ms;        /* per attempt; <= 0: 5000 */
    int retries;           /* resends after a timeout; < 0: 0 */
} wp_ate_config;

/* Connects and opens a session (HELLO). On success *out is the handle; on failure *out is NULL
 * and the status says why (WP_ATE_S_NOT_ADMITTED, WP_ATE_S_UNKNOWN_JOB, WP_ATE_E_TIMEOUT, ...;
 * the text is in wp_ate_last_error(NULL)). A host that does not admit the key never answers:
 * CurveZMQ drops the connection, so that shows as WP_ATE_E_TIMEOUT. */
WP_ATE_EXPORT int wp_ate_open(const wp_ate_config* config, wp_ate** out);

/* Closes the session (BYE, waiting at most timeout_ms) and frees the handle. NULL is a no-op. */
WP_ATE_EXPORT void wp_ate_close(wp_ate* handle);

/* The detailed text of the handle's last failure ("" if none): the host's ERROR text or the
 * local reason. With NULL: the calling thread's last wp_ate_open / wp_ate_read_key_file failure.
 * Valid until the next call on the same handle (or thread). Never NULL. */
WP_ATE_EXPORT const char* wp_ate_last_error(const wp_ate* handle);

/* The session the host opened, and the limits it advertised. */
WP_ATE_EXPORT uint64_t wp_ate_session_id(const wp_ate* handle);
WP_ATE_EXPORT int wp_ate_max_sites(const wp_ate* handle);

/* ---- Touchdown -------------------------------------------------------------------------- */
typedef struct wp_ate_site_request {
    uint16_t site; /* site number, distinct within one touchdown */
    int32_t x, y;  /* die coordinates in the wafer map */
    int has_uid;   /* 1: uid holds the die's own UID (read from its fuses); 0: the host assigns */
    uint8_t uid[WP_ATE_UID_SIZE];
} wp_ate_site_request;

typedef struct wp_ate_site_identity {
    uint16_t site;
    int status;                 /* WP_ATE_OK, WP_ATE_S_REISSUED, or a refusal (WP_ATE_S_*) */
    char text[WP_ATE_MAX_TEXT]; /* why, for a refusal; NUL-terminated */
    /* The rest is filled only when status is WP_ATE_OK or WP_ATE_S_REISSUED. */
    uint8_t uid[WP_ATE_UID_SIZE]; /* the die's UID (the host's choice if the request had none) */
    uint8_t key_usage;            /* 1 = device identity key */
    uint8_t key_algorithm;        /* 1 = WPID-1: AES-256-KW(KEK, P-256 private scalar) */
    uint8_t key_version;          /* 1 */
    uint8_t wrapped_key[WP_ATE_WRAPPED_KEY_SIZE];
    size_t certificate_length;
    uint8_t certificate[WP_ATE_MAX_CERTIFICATE]; /* the device certificate, DER */
    uint8_t chain_id[WP_ATE_CHAIN_ID_SIZE]; /* SHA-256 of the CA chain's DER, issuing CA first */
} wp_ate_site_identity;

/* Asks for the identities of the `count` dies of one touchdown. `sequence` numbers the touchdowns
 * of the session; repeating a call with the same sequence and the same sites (after a timeout,
 * say) gets the same answer. identities[] has room for `count` entries and receives them in
 * the order of sites[]. Returns WP_ATE_OK when the host answered (look at each site's status),
 * or the reason it did not (WP_ATE_E_*, or WP_ATE_S_* when the host refused the whole request). */
WP_ATE_EXPORT int wp_ate_touchdown(wp_ate* handle, const char* lot, uint16_t wafer,
                                   uint32_t sequence, const wp_ate_site_request* sites,
                                   size_t count, wp_ate_site_identity* identities);

/* The same, naming the physical wafer: `substrate_id` is the wafer's id as the prober read it
 * (SEMI E142 SubstrateId, SINF WAFER), printable ASCII, 1..255 bytes. The host then never takes
 * another wafer that shares the lot and wafer number for this one; a host that serves no map
 * for the wafer needs it when its job derives UIDs from the die's location. Protocol 1.1
 * (TOUCHDOWN_WAFER): against a host that agreed on 1.0 it fails with WP_ATE_E_PROTOCOL. */
WP_ATE_EXPORT int wp_ate_touchdown_wafer(wp_ate* handle, const char* lot, uint16_t wafer,
                                         const char* substrate_id, uint32_t sequence,
                                         const wp_ate_site_request* sites, size_t count,
                                         wp_ate_site_identity* identities);

/* ---- Results ---------------------------------------------------------------------------- */
enum { WP_ATE_PROGRAMMED = 1, WP_ATE_FAILED = 2 };

typedef struct wp_ate_site_result {
    uint16_t site;
    uint8_t uid[WP_ATE_UID_SIZE]; /* the UID as delivered */
    int outcome;                  /* WP_ATE_PROGRAMMED or WP_ATE_FAILED */
    const char* bin;              /* the tester's bin, printable ASCII; NULL or "" = none */
} wp_ate_site_result;

typedef struct wp_ate_result_ack {
    uint16_t site;
    uint8_t uid[WP_ATE_UID_SIZE];
    int status; /* WP_ATE_OK or a refusal (WP_ATE_S_UNKNOWN_UID, ...) */
    char text[WP_ATE_MAX_TEXT];
} wp_ate_result_ack;

/* Reports what the tester did with the dies of touchdown `sequence`. acks[] has room for
 * `count` entries, in the order of results[]. Same return convention as wp_ate_touchdown. */
WP_ATE_EXPORT int wp_ate_results(wp_ate* handle, uint32_t sequence,
                                 const wp_ate_site_result* results, size_t count,
                                 wp_ate_result_ack* acks);

/* ---- Final test (protocol 1.2, docs/final-test.md) --------------------------------------- */
/* Packaged parts in a handler's sites, by UID. Against a host that agreed on 1.0 or 1.1 these
 * calls fail with WP_ATE_E_PROTOCOL. */
typedef struct wp_ate_part_request {
    uint16_t site;                /* the handler's site number, distinct within one call */
    uint8_t uid[WP_ATE_UID_SIZE]; /* read from the part's fuses */
    const char* carrier_id;       /* strip / tray id, printable ASCII; NULL or "" = not known */
    uint16_t row, column;         /* the part's place in the carrier (ignored without one) */
} wp_ate_part_request;

typedef struct wp_ate_part_answer {
    uint16_t site;
    int status;                 /* WP_ATE_S_VERIFY, WP_ATE_OK / WP_ATE_S_REISSUED, or a refusal */
    char text[WP_ATE_MAX_TEXT]; /* why, for a refusal */
    uint8_t uid[WP_ATE_UID_SIZE];
    /* WP_ATE_OK / WP_ATE_S_REISSUED: a fresh identity, as in wp_ate_site_identity. */
    uint8_t key_usage, key_algorithm, key_version;
    uint8_t wrapped_key[WP_ATE_WRAPPED_KEY_SIZE];
    /* Every status that carries an identity or a challenge: the part's certificate. */
    size_t certificate_length;
    uint8_t certificate[WP_ATE_MAX_CERTIFICATE];
    uint8_t chain_id[WP_ATE_CHAIN_ID_SIZE];
    /* WP_ATE_S_VERIFY: the challenge, and the exact bytes the part must sign with ECDSA P-256 /
     * SHA-256 (label, UID, this session's id, challenge). Single use, bound to this session:
     * report the signature with wp_ate_final_results on the same handle. */
    uint8_t challenge[WP_ATE_CHALLENGE_SIZE];
    uint8_t message[WP_ATE_CHALLENGE_MESSAGE_SIZE];
} wp_ate_part_answer;

/* FINAL_TOUCHDOWN: the parts in the handler's sites. `lot` is the parts' lot, `handler_id` the
 * handler's id (printable ASCII). `sequence` shares the session's touchdown numbering. answers[]
 * has room for `count` entries, in the order of parts[]. Same return convention as
 * wp_ate_touchdown. */
WP_ATE_EXPORT int wp_ate_final_touchdown(wp_ate* handle, const char* lot, const char* handler_id,
                                         uint32_t sequence, const wp_ate_part_request* parts,
                                         size_t count, wp_ate_part_answer* answers);

typedef struct wp_ate_part_result {
    uint16_t site;
    uint8_t uid[WP_ATE_UID_SIZE];
    int outcome;       /* WP_ATE_PROGRAMMED (passed / provisioned) or WP_ATE_FAILED */
    const char* bin;   /* printable ASCII; NULL or "" = none */
    int has_signature; /* 1 for a VERIFY part that signed its challenge */
    uint8_t signature[WP_ATE_SIGNATURE_SIZE]; /* r || s */
} wp_ate_part_result;

/* FINAL_RESULTS for the parts of final touchdown `sequence`. acks[] as for wp_ate_results; a
 * swapped part comes back WP_ATE_S_SIGNATURE_MISMATCH, a stale or replayed answer
 * WP_ATE_S_CHALLENGE_REFUSED. */
WP_ATE_EXPORT int wp_ate_final_results(wp_ate* handle, uint32_t sequence,
                                       const wp_ate_part_result* results, size_t count,
                                       wp_ate_result_ack* acks);

#ifdef __cplusplus
}
#endif

#endif /* WAFERPROV_ATE_H */
