-- Attempt outcomes were written as the Rust debug text of the provider's answer
-- ("Succeeded", "Failed { code: .. }"); they are now the names of `AttemptOutcome`, and a
-- decline keeps its text in `error`. Simulated intents get the CHECK their status always met.
UPDATE payment_attempts
   SET error = CASE WHEN outcome LIKE 'Failed%' THEN COALESCE(error, outcome) ELSE error END,
       outcome = CASE
           WHEN outcome = 'RequiresConfirmation' THEN 'requires_confirmation'
           WHEN outcome = 'Processing' THEN 'processing'
           WHEN outcome = 'RequiresAction' THEN 'requires_action'
           WHEN outcome = 'Succeeded' THEN 'succeeded'
           WHEN outcome LIKE 'Failed%' THEN 'failed'
           WHEN outcome = 'Canceled' THEN 'canceled'
           ELSE outcome
       END;

ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_outcome_check CHECK (outcome IN (
    'created', 'requires_confirmation', 'processing', 'requires_action', 'succeeded', 'failed',
    'canceled', 'refunded', 'error'));

ALTER TABLE sim_intents ADD CONSTRAINT sim_intents_status_check CHECK (status IN (
    'requires_confirmation', 'requires_action', 'succeeded', 'failed', 'canceled'));
