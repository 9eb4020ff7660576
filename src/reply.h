/*
 * reply.h - one reply as it is generated: each sampled token is reported,
 * ends the reply (eos, <extra_id_1>) or is decoded to text, and the text
 * goes through a reply parser (tool calls, stop strings) whose events are
 * passed on. nt_generate (one sequence) and the scheduler (many) both
 * drive their replies through this, so a reply ends the same way in both.
 */
#ifndef NT_REPLY_H
#define NT_REPLY_H

#include "internal.h"

typedef struct nt_reply nt_reply;

/* params: stop strings (copied), parse_tool_calls; events go to fn, with
 * `request` set in each. */
nt_reply *nt_reply_new(const nt_tokenizer *tok, const nt_generate_params *params,
                       nt_event_fn fn, void *user, uint64_t request, nt_error *err);
void nt_reply_free(nt_reply *r);

/*
 * Text the reply starts with that was not generated (the caller's reply
 * prefix): fed to the parser as if decoded. *finish as nt_reply_token.
 */
nt_status nt_reply_text(nt_reply *r, const char *text, size_t len,
                        nt_finish_reason *finish, nt_error *err);

/*
 * A sampled token: its TOKEN event, then its text. *finish becomes EOS,
 * END_OF_TURN, STOP or CANCELLED (fn returned nonzero) when the reply ends
 * with it, else NONE; max_tokens and the context are the caller's to check.
 */
nt_status nt_reply_token(nt_reply *r, int32_t id, const nt_sample *sample,
                         nt_finish_reason *finish, nt_error *err);

/*
 * The reply ended with *finish: sends what the decoder and the parser held
 * back (unless it ended at a stop string, a new turn or a cancel) and may
 * turn *finish into STOP or CANCELLED.
 */
nt_status nt_reply_end(nt_reply *r, nt_finish_reason *finish, nt_error *err);

int nt_reply_tool_calls(const nt_reply *r);

#endif
