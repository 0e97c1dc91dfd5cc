#!/usr/bin/env python3
"""Makes tiny MaxMind databases for the geoip tests (Envoy's envoy.geoip_providers.maxmind).

Usage: make-test-geoip.py DESCRIPTION.json OUT_DIR

Writes OUT_DIR/city.mmdb (GeoIP2-City), OUT_DIR/asn.mmdb (GeoLite2-ASN) and
OUT_DIR/anon.mmdb (GeoIP2-Anonymous-IP), each an IPv6 tree with IPv4 networks at ::/96, as
MaxMind ships them. DESCRIPTION.json is {"networks": [NETWORK, ...]}, a NETWORK:

  {"network": "203.0.113.0/24",          # required: an IPv4 or IPv6 CIDR
   "country": "FR", "country_name": "France", "city": "Paris", "region": "IDF",
   "asn": 64500, "asn_org": "Example Transit",
   "anonymous": true, "anonymous_vpn": true, "hosting_provider": false,
   "tor_exit_node": false, "public_proxy": false}

A network goes into the city database when it has country, city or region (region is the
first subdivision's ISO code), into the ASN database when it has asn, into the
anonymous-IP database when it has any of the five flags (a flag left out is absent from the
record, so Envoy adds no header for it). A database no network goes into is still written,
empty, so every path Envoy is given exists. Unknown keys and wrong types are errors.

Needs the PyPI package mmdb-writer (scripts/install-envoy.sh puts it into .venv).
"""

import json
import os
import sys

try:
    from mmdb_writer import MMDBWriter, MmdbU32
    from netaddr import IPNetwork, IPSet
except ImportError as error:  # pragma: no cover - the message is the point
    sys.exit(
        f"make-test-geoip: {error}: run `make setup` (installs mmdb-writer into .venv) "
        "and run this with .venv/bin/python"
    )

STRINGS = ("country", "country_name", "city", "region", "asn_org")
FLAGS = {
    "anonymous": "is_anonymous",
    "anonymous_vpn": "is_anonymous_vpn",
    "hosting_provider": "is_hosting_provider",
    "tor_exit_node": "is_tor_exit_node",
    "public_proxy": "is_public_proxy",
}
KNOWN = {"network", "asn", *STRINGS, *FLAGS}


def fail(message):
    sys.exit(f"make-test-geoip: {message}")


def check(index, network):
    if not isinstance(network, dict):
        fail(f"networks[{index}] is not an object")
    unknown = set(network) - KNOWN
    if unknown:
        fail(f"networks[{index}]: unknown keys {sorted(unknown)} (known: {sorted(KNOWN)})")
    if not isinstance(network.get("network"), str):
        fail(f"networks[{index}]: 'network' (a CIDR string) is required")
    try:
        IPNetwork(network["network"])
    except Exception as error:  # netaddr raises several types
        fail(f"networks[{index}]: bad network {network['network']!r}: {error}")
    for key in STRINGS:
        if key in network and not isinstance(network[key], str):
            fail(f"networks[{index}]: {key} must be a string")
    for key in FLAGS:
        if key in network and not isinstance(network[key], bool):
            fail(f"networks[{index}]: {key} must be true or false")
    asn = network.get("asn")
    if asn is not None and (isinstance(asn, bool) or not isinstance(asn, int) or not 0 < asn < 2**32):
        fail(f"networks[{index}]: asn must be an integer in 1..2^32-1")


def city_record(network):
    record = {}
    if "country" in network or "country_name" in network:
        country = {}
        if "country" in network:
            country["iso_code"] = network["country"]
        if "country_name" in network:
            country["names"] = {"en": network["country_name"]}
        record["country"] = country
    if "city" in network:
        record["city"] = {"names": {"en": network["city"]}}
    if "region" in network:
        record["subdivisions"] = [{"iso_code": network["region"]}]
    return record


def asn_record(network):
    record = {"autonomous_system_number": MmdbU32(network["asn"])}
    if "asn_org" in network:
        record["autonomous_system_organization"] = network["asn_org"]
    return record


def anon_record(network):
    return {field: network[key] for key, field in FLAGS.items() if key in network}


def writer(database_type):
    return MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": f"mfa-gate test {database_type} database"},
    )


def main():
    if len(sys.argv) != 3:
        fail("usage: make-test-geoip.py DESCRIPTION.json OUT_DIR")
    description_path, out_dir = sys.argv[1], sys.argv[2]
    with open(description_path, encoding="utf-8") as file:
        description = json.load(file)
    networks = description.get("networks") if isinstance(description, dict) else None
    if not isinstance(networks, list):
        fail('the description must be {"networks": [...]}')
    for index, network in enumerate(networks):
        check(index, network)

    databases = {
        "city.mmdb": (writer("GeoIP2-City"), city_record),
        "asn.mmdb": (writer("GeoLite2-ASN"), lambda n: asn_record(n) if "asn" in n else {}),
        "anon.mmdb": (writer("GeoIP2-Anonymous-IP"), anon_record),
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, (database, record_of) in databases.items():
        for network in networks:
            record = record_of(network)
            if record:
                database.insert_network(IPSet([network["network"]]), record)
        database.to_db_file(os.path.join(out_dir, name))


if __name__ == "__main__":
    main()
