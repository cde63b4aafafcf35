// The baseline for the end-to-end benchmarks: the least a redirect Worker can do on this runtime.
export default {
  fetch(request) {
    const offer = new URL(request.url).searchParams.get("offer_id") ?? "";
    return new Response(null, { status: 302, headers: { location: `https://shop.example/landing?offer=${offer}` } });
  },
};
