// istio.io's "Authorization for HTTP traffic" task with Bookinfo, step by step, through real
// sidecars over mTLS. Small apps play Bookinfo's services in namespace default, each with its
// service account (bookinfo-productpage, -details, -reviews, -ratings): productpage calls details
// and reviews, reviews calls ratings, each through its own sidecar; a client in istio-system
// plays the ingress gateway. Each step applies the task's policy and checks what the task shows:
//   1. allow-nothing (spec {}) in default: the product page is "RBAC: access denied";
//   2. productpage-viewer (GET to app=productpage from anyone): the page loads, with "Error
//      fetching product details" and "Error fetching product reviews" (both 403);
//   3. details-viewer (GET to app=details from the productpage identity): details shown;
//   4. reviews-viewer (GET to app=reviews from the productpage identity): reviews shown, with
//      "Ratings service is currently unavailable" (ratings 403 to reviews);
//   5. ratings-viewer (GET to app=ratings from the reviews identity): all of it shown.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AuthzMesh } from '../fixtures/authz-mesh.ts';

const mesh = new AuthzMesh();
const outbound: Record<string, number> = {};
let ingress = 0;

/** A GET through `from`'s sidecar: status and body. */
function get(from: string, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: outbound[from], path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

const json = (res: http.ServerResponse, v: unknown) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(v));
};

/** Bookinfo's apps: what each answers, calling the others as Bookinfo's do. */
const APPS: Record<string, http.RequestListener> = {
  productpage: async (_req, res) => {
    const details = await get('productpage', 'details:9080', '/details/0');
    const reviews = await get('productpage', 'reviews:9080', '/reviews/0');
    json(res, {
      details: details.status === 200 ? JSON.parse(details.body) : { error: 'Error fetching product details', status: details.status },
      reviews: reviews.status === 200 ? JSON.parse(reviews.body) : { error: 'Error fetching product reviews', status: reviews.status },
    });
  },
  details: (_req, res) => json(res, { type: 'paperback', pages: 200, publisher: 'PublisherA' }),
  reviews: async (_req, res) => {
    const ratings = await get('reviews', 'ratings:9080', '/ratings/0');
    json(res, { reviews: ['An extremely entertaining play by Shakespeare.'], ratings: ratings.status === 200 ? JSON.parse(ratings.body) : { error: 'Ratings service is currently unavailable', status: ratings.status } });
  },
  ratings: (_req, res) => json(res, { Reviewer1: 5 }),
};

const productpage = async () => {
  const r = await get('ingress', 'productpage.default:9080', '/productpage');
  return { status: r.status, page: r.status === 200 ? JSON.parse(r.body) : r.body };
};

const apply = (name: string, spec: Record<string, unknown>) => ({ metadata: { name, namespace: 'default' }, spec });
const ALLOW_NOTHING = apply('allow-nothing', {});
const PRODUCTPAGE_VIEWER = apply('productpage-viewer', { selector: { matchLabels: { app: 'productpage' } }, action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
const DETAILS_VIEWER = apply('details-viewer', {
  selector: { matchLabels: { app: 'details' } },
  action: 'ALLOW',
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }], to: [{ operation: { methods: ['GET'] } }] }],
});
const REVIEWS_VIEWER = apply('reviews-viewer', {
  selector: { matchLabels: { app: 'reviews' } },
  action: 'ALLOW',
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }], to: [{ operation: { methods: ['GET'] } }] }],
});
const RATINGS_VIEWER = apply('ratings-viewer', {
  selector: { matchLabels: { app: 'ratings' } },
  action: 'ALLOW',
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-reviews'] } }], to: [{ operation: { methods: ['GET'] } }] }],
});

before(async () => {
  await mesh.start('bookinfo');
  for (const [name, handler] of Object.entries(APPS)) {
    const app = await mesh.httpApp(name, handler);
    const w = await mesh.workload({ name: `${name}-v1`, namespace: 'default', sa: `bookinfo-${name}`, service: name, labels: { app: name, version: 'v1' }, ports: [['http', 9080, app]], outbound: true });
    outbound[name] = w.outbound;
  }
  ingress = (await mesh.workload({ name: 'istio-ingressgateway', namespace: 'istio-system', sa: 'istio-ingressgateway-service-account', outbound: true })).outbound;
  outbound.ingress = ingress;
  await mesh.synced();
});
after(() => mesh.close());

test('before: the whole page', async () => {
  const p = await productpage();
  assert.equal(p.status, 200);
  assert.deepEqual(p.page.details.pages, 200);
  assert.deepEqual(p.page.reviews.ratings, { Reviewer1: 5 });
});

test('1. allow-nothing in default: "RBAC: access denied"', async () => {
  await mesh.setPolicies([ALLOW_NOTHING]);
  const p = await productpage();
  assert.deepEqual(p, { status: 403, page: 'RBAC: access denied' });
});

test('2. productpage-viewer: the page, with "Error fetching product details" and "Error fetching product reviews"', async () => {
  await mesh.setPolicies([ALLOW_NOTHING, PRODUCTPAGE_VIEWER]);
  const p = await productpage();
  assert.equal(p.status, 200);
  assert.deepEqual(p.page.details, { error: 'Error fetching product details', status: 403 });
  assert.deepEqual(p.page.reviews, { error: 'Error fetching product reviews', status: 403 });
});

test('3. details-viewer: the details are shown; reviews still fail', async () => {
  await mesh.setPolicies([ALLOW_NOTHING, PRODUCTPAGE_VIEWER, DETAILS_VIEWER]);
  const p = await productpage();
  assert.equal(p.page.details.publisher, 'PublisherA');
  assert.deepEqual(p.page.reviews, { error: 'Error fetching product reviews', status: 403 });
  // Only productpage's identity may read details: the ingress may not, even with GET.
  assert.equal((await get('ingress', 'details.default:9080', '/details/0')).status, 403);
});

test('4. reviews-viewer: the reviews are shown, with "Ratings service is currently unavailable"', async () => {
  await mesh.setPolicies([ALLOW_NOTHING, PRODUCTPAGE_VIEWER, DETAILS_VIEWER, REVIEWS_VIEWER]);
  const p = await productpage();
  assert.equal(p.page.details.publisher, 'PublisherA');
  assert.deepEqual(p.page.reviews.reviews, ['An extremely entertaining play by Shakespeare.']);
  assert.deepEqual(p.page.reviews.ratings, { error: 'Ratings service is currently unavailable', status: 403 });
});

test('5. ratings-viewer: the whole page again', async () => {
  await mesh.setPolicies([ALLOW_NOTHING, PRODUCTPAGE_VIEWER, DETAILS_VIEWER, REVIEWS_VIEWER, RATINGS_VIEWER]);
  const p = await productpage();
  assert.equal(p.status, 200);
  assert.equal(p.page.details.publisher, 'PublisherA');
  assert.deepEqual(p.page.reviews.ratings, { Reviewer1: 5 });
  // productpage-viewer allows GET only.
  const post = await new Promise<number>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: ingress, path: '/productpage', method: 'POST', headers: { host: 'productpage.default:9080' }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.end();
  });
  assert.equal(post, 403);
});

test('clean up: without policies, the page is whole', async () => {
  await mesh.setPolicies([]);
  assert.equal((await productpage()).status, 200);
});
