// A second baseline: the bare redirect Worker plus one JSON log line per click, of the size and
// fields of clickgate's decision line. Every clickgate decision is logged, so clickgate can be no
// faster than this; the benchmark prints its ratio to the bare Worker beside clickgate's.
export default {
  fetch(request) {
    const params = new URL(request.url).searchParams;
    const offer = params.get("offer_id") ?? "";
    const cf = request.cf ?? {};
    console.log(JSON.stringify({
      event: "click",
      ts: new Date().toISOString(),
      transaction_id: crypto.randomUUID(),
      verdict: "redirect",
      score: 0,
      declined: false,
      monitor: false,
      reasons: [],
      offer_id: offer,
      aff_id: params.get("aff_id"),
      source_id: params.get("source_id"),
      sub1: params.get("sub1"),
      ip: request.headers.get("cf-connecting-ip"),
      country: cf.country,
      asn: String(cf.asn),
      user_agent: request.headers.get("user-agent"),
      preview: false,
    }));
    return new Response(null, { status: 302, headers: { location: `https://shop.example/landing?offer=${offer}` } });
  },
};
