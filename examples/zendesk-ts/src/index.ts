// `zendesk-ts`: the Zendesk example connector of examples/zendesk, in TypeScript on
// @sluice/sdk. Ticket and webhook actions, and the `ticketEvent` trigger, which
// verifies deliveries with the webhook's signing secret (cached in instance state) and
// whose hooks manage its webhook. examples/zendesk/tests runs the same tests against
// this component and the Rust one, and checks that their manifests are equal.

import {
  type Connection,
  type Context,
  ConnectionError,
  Fatal,
  HttpResponse,
  InvalidInput,
  Request,
  type RequestOptions,
  SluiceError,
  TriggerResponse,
  defineComponent,
  hmac,
  http,
} from '@sluice/sdk';

/** Config-variable key of the connection every call uses. */
export const CONNECTION = 'zendesk';
/** Branches of `ticketEvent`. */
export const COMMENT_ADDED = 'Comment Added';
export const OTHER = 'Other';
/** The event type of a new ticket comment, and what the webhook subscribes to. */
export const COMMENT_ADDED_EVENT = 'zen:event-type:ticket.comment_added';
/**
 * A cached signing secret younger than this is trusted: a delivery it does not verify
 * is refused without asking Zendesk again (so forged requests cannot spend the
 * account's API rate limit). An older one is re-read once, in case it was reset.
 */
export const SECRET_REFRESH_MS = 60_000;
/** Pages of webhooks followed through `links.next` before a listing stops. */
const MAX_PAGES = 20;
const TIMEOUT_MS = 30_000;

interface Webhook {
  id: string;
  endpoint: string;
}

interface WebhookPage {
  webhooks: Array<{ id: string; endpoint?: string }>;
  links?: { next?: string | null };
  meta?: { has_more?: boolean | null };
}

type Ticket = Record<string, unknown>;

/** A webhook id as it may appear in a URL path: anything else is a forgery. */
export function parseWebhookId(id: string): string {
  if (id.length > 0 && id.length <= 64 && /^[A-Za-z0-9_-]+$/.test(id)) {
    return id;
  }
  throw new InvalidInput(`\`${id}\` is not a Zendesk webhook id`);
}

/** A ticket id: a number, or the numeric string Zendesk's events carry (`"123"`). */
export function ticketId(id: number | string): number {
  if (typeof id === 'number') {
    return id;
  }
  const text = id.trim();
  if (/^\+?[0-9]+$/.test(text) && Number.isSafeInteger(Number(text))) {
    return Number(text);
  }
  throw new InvalidInput(`\`ticketId\` must be a ticket number, not \`${id}\``);
}

/** The branch of an event, from its `type`. */
export function classify(eventType: string): string {
  return eventType === COMMENT_ADDED_EVENT ? COMMENT_ADDED : OTHER;
}

/**
 * The API as the connection sees it: every request carries its token, and a 401/403
 * is a connection error naming it.
 */
class Api {
  private constructor(
    private readonly connection: Connection,
    readonly base: string,
    /** A token entered as a field, used when the host supplies none. */
    private readonly fieldToken: string | undefined,
  ) {}

  static open(ctx: Context): Api {
    const connection = ctx.connections.get(CONNECTION);
    const baseUrl = connection.field<unknown>('baseUrl');
    if (typeof baseUrl !== 'string') {
      throw new ConnectionError(CONNECTION, 'the `zendesk` connection has no `baseUrl`');
    }
    const base = baseUrl.trim().replace(/\/+$/, '');
    if (!(base.startsWith('https://') || base.startsWith('http://'))) {
      throw new ConnectionError(
        CONNECTION,
        `\`baseUrl\` must be an http(s) URL such as https://acme.zendesk.com, not \`${base}\``,
      );
    }
    const token = connection.field<unknown>('accessToken');
    const fieldToken = typeof token === 'string' && token.trim() !== '' ? token : undefined;
    return new Api(connection, base, fieldToken);
  }

  private options(extra: RequestOptions = {}): RequestOptions {
    const auth: RequestOptions =
      this.connection.token === undefined && this.fieldToken !== undefined
        ? { bearer: this.fieldToken, connectionKey: CONNECTION }
        : { connection: this.connection };
    return { ...extra, ...auth, headers: { accept: 'application/json' }, timeoutMs: TIMEOUT_MS };
  }

  /** Sends a request to an absolute URL; a failure is prefixed with `what`. */
  async at(method: string, url: string, what: string, extra?: RequestOptions): Promise<HttpResponse> {
    try {
      return await http.send(method, url, this.options(extra));
    } catch (e) {
      throw e instanceof SluiceError ? e.context(what) : e;
    }
  }

  /** Sends a request to a path of the account and returns its JSON body. */
  async json<T>(method: string, path: string, what: string, extra?: RequestOptions): Promise<T> {
    return this.checked<T>(await this.at(method, `${this.base}${path}`, what, extra), what);
  }

  private checked<T>(response: HttpResponse, what: string): T {
    try {
      return response.errorForStatus().json<T>();
    } catch (e) {
      throw e instanceof SluiceError ? e.context(what) : e;
    }
  }

  /** Sends a request whose 404 means "not there" rather than a failure. */
  async optional(method: string, path: string, what: string): Promise<HttpResponse | undefined> {
    const response = await this.at(method, `${this.base}${path}`, what);
    if (response.status === 404) {
      return undefined;
    }
    try {
      return response.errorForStatus();
    } catch (e) {
      throw e instanceof SluiceError ? e.context(what) : e;
    }
  }

  /** Every webhook of the account, following `links.next` (cursor pagination). */
  async webhooks(ctx: Context): Promise<Webhook[]> {
    const what = 'listing webhooks';
    const webhooks: Webhook[] = [];
    let url = `${this.base}/api/v2/webhooks`;
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = this.checked<WebhookPage>(await this.at('GET', url, what), what);
      for (const webhook of body.webhooks) {
        webhooks.push({ id: webhook.id, endpoint: webhook.endpoint ?? '' });
      }
      const next = body.links?.next;
      if (!next || !(body.meta?.has_more ?? true)) {
        return webhooks;
      }
      // The token goes only where the connection points.
      if (!next.startsWith(`${this.base}/`)) {
        throw new Fatal(`${what}: the next page is outside the account (${this.base})`);
      }
      url = next;
    }
    ctx.log.warn(`${what}: stopped after ${MAX_PAGES} pages`);
    return webhooks;
  }

  async createWebhook(name: string, endpoint: string): Promise<Webhook> {
    const created = await this.json<{ webhook: Webhook }>('POST', '/api/v2/webhooks', `creating a webhook for ${endpoint}`, {
      json: {
        webhook: {
          name,
          endpoint,
          http_method: 'POST',
          request_format: 'json',
          status: 'active',
          subscriptions: [COMMENT_ADDED_EVENT],
        },
      },
    });
    return created.webhook;
  }

  /** Deletes webhook `id`; `false` when it was already gone. */
  async deleteWebhook(id: string): Promise<boolean> {
    const valid = parseWebhookId(id);
    return (await this.optional('DELETE', `/api/v2/webhooks/${valid}`, `deleting webhook ${valid}`)) !== undefined;
  }

  /** The signing secret of webhook `id`; `undefined` when no such webhook exists. */
  async signingSecret(id: string): Promise<string | undefined> {
    const what = `reading the signing secret of webhook ${id}`;
    const response = await this.optional('GET', `/api/v2/webhooks/${id}/signing_secret`, what);
    if (response === undefined) {
      return undefined;
    }
    try {
      return response.json<{ signing_secret: { secret: string } }>().signing_secret.secret;
    } catch (e) {
      throw e instanceof SluiceError ? e.context(what) : new Fatal(`${what}: ${String(e)}`);
    }
  }

  async ticket(method: string, path: string, what: string, body: unknown): Promise<Ticket> {
    return (await this.json<{ ticket: Ticket }>(method, path, what, { json: body })).ticket;
  }
}

/** Instance-state key of the cached signing secret of webhook `id`. */
function secretKey(id: string): string {
  return `zendesk:signingSecret:${id}`;
}

/** Deletes webhook `id` and forgets its cached secret; `false` when it was gone. */
async function deleteWebhook(ctx: Context, api: Api, id: string): Promise<boolean> {
  const existed = await api.deleteWebhook(id);
  ctx.state.instance.delete(secretKey(id));
  return existed;
}

/** A signing secret as cached in instance state. */
interface CachedSecret {
  secret: string;
  fetchedAtMs: number;
}

/** The webhook this flow's deploy hook created, remembered in instance state. */
interface DeployedWebhook {
  id: string;
  endpoint: string;
}

/** Instance-state key of the webhook of the current flow. */
function webhookKey(ctx: Context): string {
  return `zendesk:webhook:${ctx.flowName}`;
}

const ticketIdSchema = {
  anyOf: [{ format: 'uint64', minimum: 0, type: 'integer' }, { type: 'string' }],
  description: 'Ticket id',
};

interface CreateTicketInput {
  subject: string;
  body: string;
  externalId: string | null;
}

interface AddCommentInput {
  ticketId: number | string;
  body: string;
  public: boolean;
}

export const connector = defineComponent({
  key: 'zendesk',
  version: '0.1.0',
  label: 'Zendesk',
  description: 'Tickets, comments and webhooks of Zendesk Support.',
  connections: [
    {
      key: CONNECTION,
      kind: 'oauth2',
      label: 'Zendesk OAuth 2.0',
      description: "A Zendesk OAuth client's token, sent as a bearer token.",
      inputs: {
        description: 'Fields of the `zendesk` connection (the OAuth token comes from the host).',
        type: 'object',
        properties: {
          baseUrl: { description: 'Your Zendesk URL, e.g. `https://acme.zendesk.com`', type: 'string' },
          accessToken: {
            default: null,
            description:
              "An OAuth access token created in Zendesk's Admin Center, when the platform does\nnot supply the connection's token itself",
            type: ['string', 'null'],
            writeOnly: true,
          },
        },
        required: ['baseUrl'],
      },
    },
  ],
  actions: {
    createTicket: {
      label: 'Create ticket',
      description: 'Creates a ticket whose description is `body`; returns the ticket.',
      inputs: {
        description: 'A ticket to create.',
        type: 'object',
        properties: {
          subject: { description: 'Ticket subject', type: 'string' },
          body: { description: "The ticket's first comment (its description)", type: 'string' },
          externalId: {
            default: null,
            description: 'Id of the record in another system (`gh-13` for GitHub issue 13), to find the ticket by',
            type: ['string', 'null'],
          },
        },
        required: ['subject', 'body'],
      },
      async run(ctx, input: CreateTicketInput) {
        if (input.body.trim() === '') {
          throw new InvalidInput("`body` must not be empty: it is the ticket's description");
        }
        const api = Api.open(ctx);
        const ticket = await api.ticket('POST', '/api/v2/tickets', 'creating a ticket', {
          ticket: { subject: input.subject, comment: { body: input.body }, external_id: input.externalId },
        });
        ctx.log.info(`created ticket ${ticket.id}`, { ticket: ticket.id, externalId: input.externalId });
        return ticket;
      },
    },
    findTicketByExternalId: {
      label: 'Find ticket by external id',
      description: 'Returns the ticket with the external id, or null.',
      inputs: {
        description: 'A ticket to look up.',
        type: 'object',
        properties: { externalId: { description: "The ticket's external id", type: 'string' } },
        required: ['externalId'],
      },
      async run(ctx, input: { externalId: string }) {
        const api = Api.open(ctx);
        const list = await api.json<{ tickets: Ticket[] }>(
          'GET',
          '/api/v2/tickets',
          `finding the ticket with external id \`${input.externalId}\``,
          { query: { external_id: input.externalId } },
        );
        if (list.tickets.length > 1) {
          ctx.log.warn(`${list.tickets.length} tickets have external id \`${input.externalId}\`; using the first`);
        }
        return list.tickets[0] ?? null;
      },
    },
    addComment: {
      label: 'Add comment',
      description: 'Adds a public comment (or an internal note) to a ticket; returns the ticket.',
      inputs: {
        description: 'A comment to add to a ticket.',
        type: 'object',
        properties: {
          ticketId: ticketIdSchema,
          body: { description: 'Comment text', type: 'string' },
          public: {
            default: true,
            description: 'Whether the requester sees the comment (false: an internal note)',
            type: 'boolean',
          },
        },
        required: ['ticketId', 'body'],
      },
      async run(ctx, input: AddCommentInput) {
        const id = ticketId(input.ticketId);
        if (input.body.trim() === '') {
          throw new InvalidInput('`body` must not be empty');
        }
        const api = Api.open(ctx);
        const ticket = await api.ticket('PUT', `/api/v2/tickets/${id}`, `commenting on ticket ${id}`, {
          ticket: { comment: { body: input.body, public: input.public } },
        });
        ctx.log.info(`commented on ticket ${id}`);
        return ticket;
      },
    },
    closeTicket: {
      label: 'Close ticket',
      description: "Sets a ticket's status to closed; returns the ticket.",
      inputs: {
        description: 'A ticket.',
        type: 'object',
        properties: { ticketId: ticketIdSchema },
        required: ['ticketId'],
      },
      async run(ctx, input: { ticketId: number | string }) {
        const id = ticketId(input.ticketId);
        const api = Api.open(ctx);
        const ticket = await api.ticket('PUT', `/api/v2/tickets/${id}`, `closing ticket ${id}`, {
          ticket: { status: 'closed' },
        });
        ctx.log.info(`closed ticket ${id}`);
        return ticket;
      },
    },
    deleteInstanceWebhooks: {
      label: 'Delete instance webhooks',
      description: "Deletes the webhooks that deliver to this instance's webhook URLs, and no others.",
      async run(ctx) {
        const urls = Object.values(ctx.webhookUrls);
        const api = Api.open(ctx);
        const deleted: string[] = [];
        for (const webhook of await api.webhooks(ctx)) {
          if (urls.includes(webhook.endpoint) && (await deleteWebhook(ctx, api, webhook.id))) {
            deleted.push(webhook.id);
          }
        }
        ctx.log.info(`deleted ${deleted.length} webhook(s) of this instance`, { deleted });
        return { deleted };
      },
    },
  },
  triggers: {
    ticketEvent: {
      label: 'Ticket event',
      description:
        "Runs the flow for Zendesk webhook deliveries signed with the webhook's signing secret; its deploy hook creates the webhook and its remove hook deletes it.",
      branches: [COMMENT_ADDED, OTHER],
      async run(ctx, request: Request) {
        const rawId = request.header('x-zendesk-webhook-id');
        const timestamp = request.header('x-zendesk-webhook-signature-timestamp');
        const signature = request.header('x-zendesk-webhook-signature');
        if (rawId === undefined || timestamp === undefined || signature === undefined) {
          return TriggerResponse.reject(401, 'missing Zendesk webhook signature headers');
        }
        let id: string;
        try {
          id = parseWebhookId(rawId);
        } catch {
          return TriggerResponse.reject(401, 'invalid webhook id');
        }
        const verifies = (secret: string) => hmac.verifyZendeskSignature(secret, timestamp, request.body, signature);
        const key = secretKey(id);
        const now = ctx.startedAtMs;
        const cached = ctx.state.instance.get<CachedSecret>(key);
        let verified: boolean;
        if (cached && (await verifies(cached.secret))) {
          verified = true;
        } else if (cached && Math.max(0, now - cached.fetchedAtMs) < SECRET_REFRESH_MS) {
          verified = false;
        } else {
          // No secret yet, or an old one that no longer verifies: ask Zendesk.
          const secret = await Api.open(ctx).signingSecret(id);
          if (secret === undefined) {
            ctx.log.warn(`refused a delivery for unknown webhook ${id}`);
            return TriggerResponse.reject(401, 'unknown webhook');
          }
          verified = await verifies(secret);
          ctx.state.instance.set(key, { secret, fetchedAtMs: now } satisfies CachedSecret);
          ctx.log.debug(`cached the signing secret of webhook ${id}`);
        }
        if (!verified) {
          ctx.log.warn(`refused a delivery for webhook ${id}: invalid signature`);
          return TriggerResponse.reject(401, 'invalid signature');
        }
        const body = request.json<{ type?: unknown }>();
        if (body === undefined) {
          return TriggerResponse.reject(400, 'the body is not JSON');
        }
        const eventType = body && typeof body === 'object' && typeof body.type === 'string' ? body.type : '';
        return TriggerResponse.acceptRequest(request).branch(classify(eventType));
      },

      /**
       * Creates the flow's webhook. Idempotent: a webhook already delivering to the
       * flow's URL is reused, extra copies are deleted, and a remembered webhook that
       * delivers elsewhere (the URL changed) goes.
       */
      async onDeploy(ctx) {
        const endpoint = ctx.ownWebhookUrl();
        const api = Api.open(ctx);
        const key = webhookKey(ctx);
        const remembered = ctx.state.instance.get<DeployedWebhook>(key);
        const ours = (await api.webhooks(ctx)).filter((webhook) => webhook.endpoint === endpoint);
        let id: string;
        if (ours.length > 0) {
          id = ours[0].id;
          ctx.log.info(`reusing webhook ${id} for ${endpoint}`);
        } else {
          const created = await api.createWebhook(`Sluice: ${ctx.flowName} (${ctx.instanceId})`, endpoint);
          id = created.id;
          ctx.log.info(`created webhook ${id} for ${endpoint}`);
        }
        for (const duplicate of ours.slice(1)) {
          await deleteWebhook(ctx, api, duplicate.id);
          ctx.log.info(`deleted duplicate webhook ${duplicate.id}`);
        }
        if (remembered && remembered.id !== id) {
          await deleteWebhook(ctx, api, remembered.id);
          ctx.log.info(`deleted webhook ${remembered.id}, which delivered to ${remembered.endpoint}`);
        }
        ctx.state.instance.set(key, { id, endpoint } satisfies DeployedWebhook);
      },

      /**
       * Deletes the flow's webhook: the remembered one and any other delivering to the
       * flow's URL. A webhook already gone is fine.
       */
      async onRemove(ctx) {
        const key = webhookKey(ctx);
        const remembered = ctx.state.instance.get<DeployedWebhook>(key);
        const endpoints: string[] = [];
        const own = ctx.webhookUrl(ctx.flowName);
        if (own !== undefined) {
          endpoints.push(own);
        }
        if (remembered) {
          endpoints.push(remembered.endpoint);
        }
        const api = Api.open(ctx);
        const ids: string[] = remembered ? [remembered.id] : [];
        for (const webhook of await api.webhooks(ctx)) {
          if (endpoints.includes(webhook.endpoint) && !ids.includes(webhook.id)) {
            ids.push(webhook.id);
          }
        }
        let deleted = 0;
        for (const id of ids) {
          if (await deleteWebhook(ctx, api, id)) {
            deleted += 1;
          }
        }
        ctx.state.instance.delete(key);
        ctx.log.info(`deleted ${deleted} webhook(s)`);
      },
    },
  },
});
