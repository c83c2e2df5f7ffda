import type { ComponentChildren } from 'preact';
import type { ExpiryChoices } from '../expiry-choices.js';
import { Csrf, type Frame } from './layout.js';
import { FieldError } from './parts.js';

/** What a token form shows: the values entered so far and the error of one field. */
export interface TokenFormState {
  values: Record<string, string>;
  error?: { field: string; message: string };
}

const errorOf = (state: TokenFormState, field: string) =>
  state.error?.field === field ? state.error.message : undefined;

function describedBy(...ids: Array<string | false>): string | undefined {
  const list = ids.filter((id): id is string => id !== false);
  return list.length === 0 ? undefined : list.join(' ');
}

/** A text field with its label, hint and error. */
function TextField(props: {
  state: TokenFormState;
  name: string;
  label: string;
  hint?: string;
  required?: boolean;
  maxLength?: number;
  autocomplete?: string;
}) {
  const { state, name, label, hint } = props;
  const error = errorOf(state, name);
  return (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      {hint !== undefined && (
        <p class="hint" id={`f-${name}-hint`}>
          {hint}
        </p>
      )}
      <input
        type="text"
        id={`f-${name}`}
        name={name}
        value={state.values[name] ?? ''}
        required={props.required}
        maxLength={props.maxLength}
        autocomplete={props.autocomplete ?? 'off'}
        aria-invalid={error === undefined ? undefined : 'true'}
        aria-describedby={describedBy(
          hint !== undefined && `f-${name}-hint`,
          error !== undefined && `f-${name}-error`,
        )}
      />
      <FieldError id={`f-${name}-error`} message={error} />
    </div>
  );
}

function TextArea(props: { state: TokenFormState; name: string; label: string; hint: string }) {
  const { state, name, label, hint } = props;
  const error = errorOf(state, name);
  return (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      <p class="hint" id={`f-${name}-hint`}>
        {hint}
      </p>
      <textarea
        id={`f-${name}`}
        name={name}
        rows={3}
        spellcheck={false}
        aria-invalid={error === undefined ? undefined : 'true'}
        aria-describedby={describedBy(`f-${name}-hint`, error !== undefined && `f-${name}-error`)}
      >
        {state.values[name] ?? ''}
      </textarea>
      <FieldError id={`f-${name}-error`} message={error} />
    </div>
  );
}

/** The optional restrictions of a token (create and edit forms). */
export function RestrictionFields({ state, open }: { state: TokenFormState; open?: boolean }) {
  const fields = ['allowedIps', 'requiredHeaders', 'resources', 'rateLimit'];
  const filled = fields.some((f) => (state.values[f] ?? '') !== '');
  const failed = fields.includes(state.error?.field ?? '');
  return (
    <details open={open || filled || failed}>
      <summary>Restrictions (optional)</summary>
      <div class="grid">
        <TextArea
          state={state}
          name="allowedIps"
          label="Allowed IP addresses"
          hint="Addresses, CIDR ranges or first-last ranges, one per line. Empty: any address."
        />
        <TextArea
          state={state}
          name="requiredHeaders"
          label="Required headers"
          hint="Name: value, one per line. Every request must carry them. Empty: none."
        />
        <TextArea
          state={state}
          name="resources"
          label="Repositories"
          hint="PROJ, PROJ/repo or ~user/repo, one per line; * matches within a part. Empty: all."
        />
        <TextField
          state={state}
          name="rateLimit"
          label="Rate limit"
          hint="Requests / seconds, e.g. 600/60 for 600 a minute. Empty: the proxy's default."
          maxLength={30}
        />
      </div>
    </details>
  );
}

export interface CreateFormProps {
  frame: Frame;
  state: TokenFormState;
  expiry: ExpiryChoices;
  /** May create write tokens; otherwise the choice is shown disabled with the reason. */
  mayWrite: boolean;
  /** The token manager's form: a token for any user. */
  onBehalf: boolean;
  /** Random id of this form, so a resent form does not make a second token. */
  formId: string;
  /** More fields after the restrictions (room for an upstream credential, e.g. a Bitbucket access token). */
  children?: ComponentChildren;
  /**
   * Access-token mode: the Bitbucket credential the create needs. `password`: the caller logged
   * in with a password, so the form may ask for it again (it is never kept in the session).
   */
  upstream?: { password: boolean };
}

/** A password-type field that is never filled in again from what was sent. */
function SecretField(props: {
  state: TokenFormState;
  name: string;
  label: string;
  hint: string;
  autocomplete: string;
}) {
  const { state, name, label, hint } = props;
  const error = errorOf(state, name);
  return (
    <div class="field">
      <label for={`f-${name}`}>{label}</label>
      <p class="hint" id={`f-${name}-hint`}>
        {hint}
      </p>
      <input
        type="password"
        id={`f-${name}`}
        name={name}
        autocomplete={props.autocomplete}
        aria-invalid={error === undefined ? undefined : 'true'}
        aria-describedby={describedBy(`f-${name}-hint`, error !== undefined && `f-${name}-error`)}
      />
      <FieldError id={`f-${name}-error`} message={error} />
    </div>
  );
}

/** Access-token mode: the owner's Bitbucket password (minting) or a Bitbucket token of theirs (linking). */
function UpstreamFields({ state, password }: { state: TokenFormState; password: boolean }) {
  return (
    <fieldset>
      <legend>Bitbucket credential</legend>
      <div class="grid">
        {password && (
          <SecretField
            state={state}
            name="bitbucketPassword"
            label="Your Bitbucket password"
            hint="Bitbucket makes the access token behind this one with it. Used for this request only, never stored."
            autocomplete="current-password"
          />
        )}
        <SecretField
          state={state}
          name="bitbucketToken"
          label={password ? 'Or a Bitbucket HTTP access token' : 'A Bitbucket HTTP access token'}
          hint="One the user created in Bitbucket (Manage account → HTTP access tokens), with at least this token’s permissions."
          autocomplete="off"
        />
      </div>
    </fieldset>
  );
}

/** The "Create token" form: name, scope, expiry, optional restrictions (and user, for managers). */
export function CreateForm({
  frame,
  state,
  expiry,
  mayWrite,
  onBehalf,
  formId,
  children,
  upstream,
}: CreateFormProps) {
  const scope = state.values['scope'] === 'write' && mayWrite ? 'write' : 'read';
  const chosen = state.values['expiry'] || expiry.preset;
  const scopeError = errorOf(state, 'scope');
  const askPassword = upstream?.password === true && !onBehalf;
  const expiryError = errorOf(state, 'expiry') ?? errorOf(state, 'expiryDate');
  return (
    <form
      method="post"
      action={`${frame.root}create`}
      class="stack"
      aria-labelledby={onBehalf ? 'create-for-heading' : 'create-heading'}
    >
      <Csrf frame={frame} />
      <input type="hidden" name="formId" value={formId} />
      {onBehalf && <input type="hidden" name="back" value="manage" />}
      <div class="grid">
        {onBehalf && (
          <TextField
            state={state}
            name="user"
            label="User"
            hint="The Bitbucket user the token acts as."
            required
            maxLength={255}
          />
        )}
        <TextField
          state={state}
          name="name"
          label="Name"
          hint="What the token is for, e.g. “laptop” or “CI builds”."
          required
          maxLength={100}
        />
        <div class="field">
          <label for="expiry">Expires</label>
          <select
            id="expiry"
            name="expiry"
            aria-describedby={expiryError === undefined ? undefined : 'expiry-error'}
          >
            {expiry.options.map((o) => (
              <option value={o.value} selected={o.value === chosen}>
                {o.label}
              </option>
            ))}
          </select>
          <div class="field" data-expiry-date="">
            <label for="expiryDate">Expiry date</label>
            <input
              type="date"
              id="expiryDate"
              name="expiryDate"
              min={expiry.minDate}
              max={expiry.maxDate}
              value={state.values['expiryDate'] ?? ''}
              aria-describedby="expiryDate-hint"
            />
            <p class="hint" id="expiryDate-hint">
              With “On a date…”: valid until the end of that day (UTC).
            </p>
          </div>
          <FieldError id="expiry-error" message={expiryError} />
        </div>
      </div>
      <fieldset
        aria-describedby={describedBy(!mayWrite && 'write-reason', scopeError !== undefined && 'scope-error')}
      >
        <legend>Scope</legend>
        <div class="choices">
          <label class="choice">
            <input type="radio" name="scope" value="read" checked={scope === 'read'} />
            <span>Read — clone, fetch, read the REST API</span>
          </label>
          <label class="choice">
            <input type="radio" name="scope" value="write" checked={scope === 'write'} disabled={!mayWrite} />
            <span>Write — also push and change things</span>
          </label>
        </div>
        {!mayWrite && (
          <p class="hint" id="write-reason">
            Write tokens are not available to you: your account is not in a group allowed to create them.
          </p>
        )}
        <FieldError id="scope-error" message={scopeError} />
      </fieldset>
      <RestrictionFields state={state} />
      {upstream !== undefined && <UpstreamFields state={state} password={askPassword} />}
      {children}
      {state.error !== undefined &&
        ![
          'name',
          'user',
          'scope',
          'expiry',
          'expiryDate',
          'allowedIps',
          'requiredHeaders',
          'resources',
          'rateLimit',
          ...(upstream === undefined ? [] : ['bitbucketToken']),
          ...(askPassword ? ['bitbucketPassword'] : []),
        ].includes(state.error.field) && (
          <p class="error-text" role="alert">
            {state.error.message}
          </p>
        )}
      <div class="buttons">
        <button type="submit" class="primary">
          Create token
        </button>
      </div>
    </form>
  );
}
