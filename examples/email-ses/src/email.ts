/** A transactional email, as producers add it to the `emails` queue. */
export interface Email {
  readonly to: string;
  readonly subject: string;
}

export const EMAIL_QUEUE = 'emails';

/** Checked when an email is added and again when a worker reserves it. */
export const emailSchema = {
  type: 'object',
  required: ['to', 'subject'],
  properties: { to: { type: 'string', minLength: 3 }, subject: { type: 'string' } },
  additionalProperties: false,
};
